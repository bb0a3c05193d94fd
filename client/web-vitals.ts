import type { Tracker } from './tracker.ts';

/** The part of a `web-vitals` report the adapter reads (the library's `Metric`). */
export interface WebVitalsMetric {
  name: 'CLS' | 'FCP' | 'INP' | 'LCP' | 'TTFB';
  value: number;
  rating: 'good' | 'needs-improvement' | 'poor';
  delta: number;
  id: string;
  navigationType?: string | undefined;
}

/**
 * The `web-vitals` library's reporters, passed in (`import * as webVitals from 'web-vitals'`), so
 * the tracker does not bundle the library for apps that do not use it.
 */
export interface WebVitalsReporters {
  onLCP(report: (metric: WebVitalsMetric) => void): void;
  onINP(report: (metric: WebVitalsMetric) => void): void;
  onCLS(report: (metric: WebVitalsMetric) => void): void;
  onTTFB(report: (metric: WebVitalsMetric) => void): void;
}

/**
 * Feeds Core Web Vitals into `perf.metric` events named `LCP`, `INP`, `CLS` and `TTFB` (unit `ms`,
 * CLS `score`), with the library's rating, delta and metric id in the metadata; each page load
 * reports each metric once it is final (web-vitals' default).
 */
export function reportWebVitals(tracker: Pick<Tracker, 'trackMetric'>, vitals: WebVitalsReporters): void {
  const report = (metric: WebVitalsMetric) => {
    tracker.trackMetric(metric.name, metric.value, metric.name === 'CLS' ? 'score' : 'ms', {
      rating: metric.rating,
      delta: metric.delta,
      metricId: metric.id,
      ...(metric.navigationType && { navigationType: metric.navigationType }),
    });
  };
  vitals.onLCP(report);
  vitals.onINP(report);
  vitals.onCLS(report);
  vitals.onTTFB(report);
}
