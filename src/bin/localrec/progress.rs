//! Progress of long commands that a person and a log can both read: an indicatif bar
//! (count, rate, ETA) when stderr is a terminal; otherwise one plain line every few
//! seconds (`LOCALREC_PROGRESS_SECONDS`, default 5; 0 for every step), so a build in a CI
//! log or a Spark driver's log is never silent for minutes, and a finished line at the end.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain lines unless `LOCALREC_PROGRESS_SECONDS` says otherwise.
const DEFAULT_SECONDS: f64 = 5.0;

fn line_interval() -> Duration {
    let seconds = std::env::var("LOCALREC_PROGRESS_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_SECONDS);
    Duration::from_secs_f64(seconds)
}

/// `12.3 s`, `4 min 05 s` or `2 h 03 min`.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{seconds:.1} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// One counted task: `what` (e.g. "encoding") over `total` `unit`s.
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
    interval: Duration,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Starts reporting; nothing is printed for an empty task.
    pub fn new(what: &str, unit: &'static str, total: u64) -> Progress {
        let bar = (total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let template = format!("{what} {{bar:40}} {{pos}}/{{len}} {unit}, {{per_sec}}, eta {{eta}}");
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let now = Instant::now();
        Progress { what: what.into(), unit, total, done: 0, started: now, last_line: now, interval: line_interval(), bar }
    }

    /// The plain line for the current count.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 { self.done as f64 / elapsed } else { 0.0 };
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 { duration(left / rate) } else { "?".into() };
        let percent = if self.total > 0 { 100.0 * self.done as f64 / self.total as f64 } else { 100.0 };
        format!(
            "{}: {}/{} {} ({percent:.0}%), {rate:.1} {}/s, {} elapsed, eta {eta}",
            self.what,
            self.done,
            self.total,
            self.unit,
            self.unit,
            duration(elapsed)
        )
    }

    /// `n` more units done.
    pub fn inc(&mut self, n: u64) {
        self.done = self.done.saturating_add(n).min(self.total);
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.last_line.elapsed() >= self.interval => {
                self.last_line = Instant::now();
                eprintln!("{}", self.line());
            }
            None => {}
        }
    }

    /// The task ended (done or stopped): the bar is cleared, a log gets the last count.
    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if self.total > 0 => eprintln!("{}", self.line()),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_every_scale() {
        assert_eq!(duration(4.26), "4.3 s");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(7380.0), "2 h 03 min");
        assert_eq!(duration(f64::INFINITY), "?");
    }

    #[test]
    fn a_plain_line_has_the_count_the_share_the_rate_and_an_eta() {
        let mut p = Progress::new("encoding", "items", 200);
        p.bar = None;
        p.done = 50;
        let line = p.line();
        assert!(line.starts_with("encoding: 50/200 items (25%), "), "{line}");
        assert!(line.contains(" items/s, ") && line.contains("eta "), "{line}");
    }
}
