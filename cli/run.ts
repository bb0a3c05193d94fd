import { CliFailure, describeFailure } from './errors.ts';
import { ExitCode } from './exit-codes.ts';
import type { CliIo } from './io.ts';
import type { Command, CommandContext } from './command.ts';
import { eraseCommands } from './commands/erase.ts';
import { keysCommands } from './commands/keys.ts';
import { workspacesCommands } from './commands/workspaces.ts';
import { limitsCommands } from './commands/limits.ts';
import { queryCommands } from './commands/query.ts';
import { rejectionsCommands } from './commands/rejections.ts';
import { retentionCommands } from './commands/retention.ts';
import { sendCommand } from './commands/send.ts';
import { tailCommand } from './commands/tail.ts';
import { DEFAULT_URL } from './connection.ts';

export const COMMANDS: readonly Command[] = [
  sendCommand,
  tailCommand,
  ...queryCommands,
  ...rejectionsCommands,
  ...workspacesCommands,
  ...keysCommands,
  ...limitsCommands,
  ...retentionCommands,
  ...eraseCommands,
];

const HELP_FLAGS = new Set(['--help', '-h']);
/** Flags that may come before the command words; the first two take a value. */
const LEADING_VALUE_FLAGS = new Set(['--url', '--key']);

export const MAIN_HELP = `Usage: telemetry <command> [flags]

The telemetry service from the command line.

Commands:
${COMMANDS.map((command) => `  ${command.path.join(' ').padEnd(22)}${command.summary}`).join('\n')}

Run "telemetry <command> --help" for a command's flags and examples.

Environment:
  TELEMETRY_URL           the service (default ${DEFAULT_URL}); --url overrides it
  TELEMETRY_KEY           the API key: ingest for send, read for query, tail and rejections, admin for
                          workspaces, keys, limits, retention and erase; --key overrides it

Exit codes:
  0  done (send: every event stored, new or duplicate)
  1  send: some events rejected; retention run: something left in place; otherwise the service
     refused the request (not found, conflict)
  2  usage error (unknown command or flag, invalid value, input the service found invalid)
  3  no API key, or the key was refused (401) or may not do this (403)
  4  the service is unreachable or failing (after retries, for send)
`;

interface Resolved {
  command: Command | undefined;
  /** Command words given that matched no command, or a group alone ("query"). */
  words: string[];
  rest: string[];
}

/**
 * The command is named by its words (`query list`), which come first; --url and --key may come
 * before them. The longest match wins, so `erase status <id>` is not `erase` with a positional.
 */
function resolveCommand(argv: readonly string[]): Resolved {
  const leading: string[] = [];
  let index = 0;
  while (index < argv.length && argv[index]!.startsWith('-')) {
    const flag = argv[index]!;
    leading.push(flag);
    index += 1;
    if (LEADING_VALUE_FLAGS.has(flag) && index < argv.length) leading.push(argv[index++]!);
  }
  const words: string[] = [];
  while (index + words.length < argv.length && !argv[index + words.length]!.startsWith('-') && words.length < 2) words.push(argv[index + words.length]!);
  for (let length = words.length; length > 0; length -= 1) {
    const command = COMMANDS.find((candidate) => candidate.path.length === length && candidate.path.every((word, i) => word === words[i]));
    if (command) return { command, words: words.slice(0, length), rest: [...leading, ...argv.slice(index + length)] };
  }
  return { command: undefined, words, rest: [...leading, ...argv.slice(index + words.length)] };
}

function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => HELP_FLAGS.has(arg));
}

function groupHelp(group: string, commands: readonly Command[]): string {
  return `Usage: telemetry ${group} <${commands.map((command) => command.path[1]).join('|')}> [flags]\n\nCommands:\n${commands
    .map((command) => `  ${command.path.join(' ').padEnd(22)}${command.summary}`)
    .join('\n')}\n\nRun "telemetry ${group} <command> --help" for a command's flags and examples.\n`;
}

/** Runs one command line and answers the exit code; prints errors as one clear message. */
export async function runCli(argv: readonly string[], io: CliIo, now: () => Date = () => new Date()): Promise<ExitCode> {
  const [first, second] = argv;
  if (first === 'help') return runCli([...argv.slice(1), '--help'], io, now);
  if (argv.length === 0 || (argv.length === 1 && first !== undefined && HELP_FLAGS.has(first))) {
    (argv.length === 0 ? io.stderr : io.stdout).write(MAIN_HELP);
    return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
  }
  const { command, words, rest } = resolveCommand(argv);
  if (!command) {
    const group = COMMANDS.filter((candidate) => candidate.path.length > 1 && candidate.path[0] === words[0]);
    if (group.length > 0 && words.length <= 1) {
      const help = groupHelp(words[0]!, group);
      if (wantsHelp(rest)) {
        io.stdout.write(help);
        return ExitCode.ok;
      }
      io.stderr.write(help);
      return ExitCode.usage;
    }
    const unknown = words.length > 0 ? `Unknown command "${words.join(' ')}"` : `Expected a command before "${second === undefined ? first : rest[0]}"`;
    io.stderr.write(`${unknown}. Run "telemetry --help" for the list.\n`);
    return ExitCode.usage;
  }
  if (wantsHelp(rest)) {
    io.stdout.write(command.help);
    return ExitCode.ok;
  }
  const context: CommandContext = { io, now };
  try {
    return await command.run(rest, context);
  } catch (error) {
    // Commands turn service errors into CliFailure themselves (they know the URL and the key
    // needed); anything left is a usage error or a bug, still shown without a stack trace.
    const { message, exitCode } = error instanceof CliFailure ? error : describeFailure(error, { url: '', keyNeeded: 'a key' });
    io.stderr.write(`${message}${/\n$/.test(message) ? '' : '\n'}`);
    if (exitCode === ExitCode.usage) io.stderr.write(`Run "telemetry ${command.path.join(' ')} --help" for usage.\n`);
    return exitCode;
  }
}
