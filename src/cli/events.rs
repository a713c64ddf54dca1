//! `berth events [--stats] [--interval D] ID`: runc's event stream: with --stats one stats event, else
//! a stats event every interval and an `oom` event whenever the OOM killer acted in the container's
//! cgroup (checked every 100 ms), until the container stops.

use super::Global;
use crate::error::{Error, Result};
use crate::state::{Container, Status};

/// `events` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One stats event, then exit.
    #[arg(long)]
    pub stats: bool,
    /// Between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

fn interval(s: &str) -> Result<std::time::Duration> {
    let bad = || Error::InvalidSpec(format!("--interval: {s:?} (e.g. 5s, 500ms)"));
    let (n, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1u64),
        None => (s.strip_suffix('s').unwrap_or(s), 1000),
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_millis(n * unit))
}

/// `berth events`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let every = interval(&a.interval)?;
    let tick = std::time::Duration::from_millis(100).min(every);
    let mut ooms = None;
    let mut next_stats = std::time::Instant::now();
    loop {
        let c = Container::peek(&g.state_root(), &a.id)?;
        if c.status() == Status::Stopped {
            return if a.stats {
                Err(Error::State(format!(
                    "container {:?}: container not running",
                    a.id
                )))
            } else {
                Ok(0)
            };
        }
        let cg = c.cgroup_for("events")?;
        if a.stats {
            let ev = serde_json::json!({"type": "stats", "id": a.id, "data": cg.stats()});
            super::out(&ev.to_string())?;
            return Ok(0);
        }
        let kills = cg.oom_kills();
        if ooms.is_some_and(|before| kills > before) {
            super::out(&serde_json::json!({"type": "oom", "id": a.id}).to_string())?;
        }
        ooms = Some(kills);
        if std::time::Instant::now() >= next_stats {
            let ev = serde_json::json!({"type": "stats", "id": a.id, "data": cg.stats()});
            super::out(&ev.to_string())?;
            next_stats += every;
        }
        drop(c);
        std::thread::sleep(tick);
    }
}
