//! Progress of long commands that a person and a log can both read: an indicatif bar
//! (count, rate, ETA) when stderr is a terminal; otherwise one plain line every few
//! seconds (`LOCALREC_PROGRESS_SECONDS`, default 5; 0 for every step), so a build in a CI
//! log or a Spark driver's log is never silent for minutes, and a finished line at the end.
//! [`Lines`] is how `build`, `merge`, `train` and `eval` hear the library's pipeline and
//! trainer: encoding, verifying, each ALS iteration, and the tuner's trials (counted
//! against its wall-time budget, which bounds their ETA).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use localrec::publish::PublishProgress;
use localrec::scorer::train::TrainProgress;
use localrec::scorer::tune::Trial;

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

/// One counted task: `what` (e.g. "encoding") over `total` `unit`s, or, open-ended,
/// within a time `limit`.
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    /// An open-ended task's wall-time bound (the tuner's budget): its ETA is at most what is left.
    limit: Option<Duration>,
    /// The last step's detail, shown on the next plain line.
    note: String,
    done: u64,
    /// The count the last plain line showed, so the finished line is not the same again.
    shown: Option<u64>,
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
        Progress::with_bar(what, unit, total, None, bar)
    }

    /// Starts an open-ended task that ends within `limit` (each step a `unit`).
    pub fn within(what: &str, unit: &'static str, limit: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            let template = format!("{what} {{spinner}} {{pos}} {unit}, {{elapsed}} {{msg}}");
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template).unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress::with_bar(what, unit, 0, Some(limit), bar)
    }

    fn with_bar(
        what: &str,
        unit: &'static str,
        total: u64,
        limit: Option<Duration>,
        bar: Option<indicatif::ProgressBar>,
    ) -> Progress {
        let now = Instant::now();
        let interval = line_interval();
        Progress { what: what.into(), unit, total, limit, note: String::new(), done: 0, shown: None, started: now, last_line: now, interval, bar }
    }

    /// The plain line for the current count.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 { self.done as f64 / elapsed } else { 0.0 };
        let note = if self.note.is_empty() { String::new() } else { format!("; last: {}", self.note) };
        if let Some(limit) = self.limit {
            return format!(
                "{}: {} {}, {rate:.1} {}/s, {} elapsed, at most {} left{note}",
                self.what,
                self.done,
                self.unit,
                self.unit,
                duration(elapsed),
                duration(limit.as_secs_f64() - elapsed),
            );
        }
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

    /// A step's detail (a tuning trial's result): printed above a bar at once, or shown
    /// on the next plain line.
    pub fn detail(&mut self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => self.note = line,
        }
    }

    /// `n` more units done.
    pub fn inc(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        if self.limit.is_none() {
            self.done = self.done.min(self.total);
        }
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.last_line.elapsed() >= self.interval => {
                self.last_line = Instant::now();
                self.shown = Some(self.done);
                eprintln!("{}", self.line());
            }
            None => {}
        }
    }

    /// The task ended (done or stopped): the bar is cleared, a log gets the last count.
    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if (self.total > 0 || self.done > 0) && self.shown != Some(self.done) => eprintln!("{}", self.line()),
            None => {}
        }
    }
}

/// The stderr side of `build`, `merge`, `train` and `eval`: a stage a line, counted
/// tasks as [`Progress`], ALS iterations counted with an ETA, and tuning trials counted
/// within the tuner's budget (each trial's result above the bar on a terminal; in a log,
/// the latest on the line written every few seconds).
pub struct Lines {
    /// The caller's counted task (encoding, verifying).
    task: Option<Progress>,
    /// The running ALS fit.
    als: Option<Progress>,
    /// ALS iterations per fit.
    iterations: usize,
    /// The tuner's trials so far.
    tuning: Option<Progress>,
    /// The tuner's wall-time budget.
    budget: Duration,
}

impl Lines {
    /// Reports for a command whose ALS runs `iterations` sweeps and whose tuner has `budget`.
    pub fn new(iterations: usize, budget: Duration) -> Lines {
        Lines { task: None, als: None, iterations, tuning: None, budget }
    }

    /// Ends every open task (its last line written), before the caller prints what came of them.
    pub fn settle(&mut self) {
        for p in [self.task.take(), self.als.take(), self.tuning.take()].into_iter().flatten() {
            p.finish();
        }
    }

    fn finish_als(&mut self) {
        if let Some(als) = self.als.take() {
            als.finish();
        }
    }

    fn finish_tuning(&mut self) {
        if let Some(tuning) = self.tuning.take() {
            tuning.finish();
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        // A command that failed mid-task still clears its bar.
        self.settle();
    }
}

impl TrainProgress for Lines {
    fn stage(&mut self, name: &str) {
        self.finish_als();
        if !name.starts_with("tuning") {
            self.finish_tuning();
        }
        let line = format!("training: {name}");
        match &mut self.tuning {
            Some(tuning) => tuning.detail(line),
            None => eprintln!("{line}"),
        }
    }

    fn als_iteration(&mut self, iteration: usize) {
        if iteration <= 1 {
            self.finish_als();
        }
        let total = self.iterations as u64;
        self.als.get_or_insert_with(|| Progress::new("training: als", "iterations", total)).inc(1);
        if iteration >= self.iterations {
            self.finish_als();
        }
    }

    fn trial(&mut self, trial: &Trial) {
        let budget = self.budget;
        let tuning = self.tuning.get_or_insert_with(|| Progress::within("tuning", "trials", budget));
        tuning.detail(super::tuning::trial_line(trial));
        tuning.inc(1);
    }
}

impl PublishProgress for Lines {
    fn start(&mut self, what: &str, unit: &'static str, total: u64) {
        self.finish();
        self.task = Some(Progress::new(what, unit, total));
    }

    fn advance(&mut self, n: u64) {
        if let Some(task) = &mut self.task {
            task.inc(n);
        }
    }

    fn finish(&mut self) {
        if let Some(task) = self.task.take() {
            task.finish();
        }
    }

    fn note(&mut self, message: &str) {
        // A note says what came of training: its counts end first.
        self.finish_als();
        self.finish_tuning();
        eprintln!("{message}");
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

    #[test]
    fn an_open_ended_line_bounds_its_eta_by_the_limit_and_shows_the_last_step() {
        let mut p = Progress::within("tuning", "trials", Duration::from_secs(120));
        p.bar = None;
        p.inc(3);
        p.detail("als k 16: validation Recall@20 0.1".into());
        let line = p.line();
        assert!(line.starts_with("tuning: 3 trials, "), "{line}");
        assert!(line.contains("at most 2 min") && line.ends_with("; last: als k 16: validation Recall@20 0.1"), "{line}");
    }
}
