/**
 * Logging: one logger for both sides. Text on stderr for people, or JSON lines
 * (FERRY_LOG_FORMAT=json) for machines. Extra sinks (the installer's report to the
 * server, a log file) can be attached and see every record at every level.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogRecord {
  ts: string;
  level: Level;
  msg: string;
  [key: string]: unknown;
}
export type LogSink = (r: LogRecord) => void;

function envLevel(): Level {
  const v = process.env.FERRY_LOG_LEVEL as Level | undefined;
  return v && v in ORDER ? v : 'warn';
}

class Logger {
  level: Level = envLevel();
  format: 'text' | 'json' = process.env.FERRY_LOG_FORMAT === 'json' ? 'json' : 'text';
  private sinks = new Set<LogSink>();
  /** false while another logger writes every record (a running server's, server/log.ts). */
  toStderr = true;

  addSink(s: LogSink): () => void {
    this.sinks.add(s);
    return () => this.sinks.delete(s);
  }

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    const r: LogRecord = { ts: new Date().toISOString(), level, msg, ...fields };
    for (const s of this.sinks) {
      try {
        s(r);
      } catch {
        /* a broken sink must never break the program it observes */
      }
    }
    if (!this.toStderr || ORDER[level] < ORDER[this.level]) return;
    if (this.format === 'json') {
      process.stderr.write(JSON.stringify(r) + '\n');
    } else {
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      process.stderr.write(`${r.ts.slice(11, 23)} ${level.padEnd(5)} ${msg}${extra ? ' ' + extra : ''}\n`);
    }
  }
  debug(msg: string, f?: Record<string, unknown>): void { this.log('debug', msg, f); }
  info(msg: string, f?: Record<string, unknown>): void { this.log('info', msg, f); }
  warn(msg: string, f?: Record<string, unknown>): void { this.log('warn', msg, f); }
  error(msg: string, f?: Record<string, unknown>): void { this.log('error', msg, f); }
}

export const log = new Logger();
