//! `berth ps ID [--format table|json] [-- PS-ARGS]`: the processes in the container's cgroup, as runc
//! shows them (json: the pids; table: `ps` itself, limited to those pids).

use super::Global;
use crate::error::{Error, Result, io_err};
use crate::state::Container;
use std::path::Path;

/// `ps` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Arguments for ps(1) (default -ef).
    #[arg(last = true)]
    pub ps_args: Vec<String>,
}

/// `berth ps`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let c = Container::peek(&g.state_root(), &a.id)?;
    let cg = c.cgroup_for("ps")?;
    let pids = cg.pids();
    if a.format == "json" {
        return super::out(&serde_json::to_string(&pids).unwrap_or_default()).map(|()| 0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| io_err("exec", Path::new("ps"), e))?;
    if !o.status.success() {
        return Err(Error::State(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::InvalidSpec("ps: the output has no PID column".into()))?;
    super::out(header)?;
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            super::out(l)?;
        }
    }
    Ok(0)
}
