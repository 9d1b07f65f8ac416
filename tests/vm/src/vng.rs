//! A module test run under virtme-ng: the guest sees the host's file system
//! (read-write), so commands, module and results cross the VM boundary as
//! plain files below the checkout (the guest's /tmp is its own tmpfs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::dmesg;
use crate::kernel::Kernel;

const GUEST_SCRIPT: &str = include_str!("guest-module.sh");

pub struct ModuleRun<'a> {
    pub root: &'a Path,
    pub kernel: &'a Kernel,
    pub module: &'a Path,
    pub timeout: Duration,
}

pub struct Verdict {
    /// Exit status of the commands (0 = all passed), None if unknown.
    status: Option<i32>,
    rmmod_failure: Option<String>,
    trouble: Vec<String>,
    timed_out: bool,
    results: PathBuf,
}

impl ModuleRun<'_> {
    pub fn execute(&self, commands: &[Vec<String>]) -> Result<Verdict> {
        let results = self
            .root
            .join("target/vmtest")
            .join(format!("run-{}", std::process::id()));
        if results.exists() {
            std::fs::remove_dir_all(&results).ok();
        }
        std::fs::create_dir_all(&results)
            .with_context(|| format!("create {}", results.display()))?;

        let script = results.join("guest-module.sh");
        std::fs::write(&script, GUEST_SCRIPT)?;
        let mut guest = vec![
            "sh".to_owned(),
            script.display().to_string(),
            results.display().to_string(),
            self.module.display().to_string(),
        ];
        for (i, command) in commands.iter().enumerate() {
            let file = results.join(format!("command-{i}.sh"));
            let line: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
            std::fs::write(&file, format!("{}\n", line.join(" ")))?;
            guest.push(file.display().to_string());
        }
        let guest: Vec<String> = guest.iter().map(|a| shell_quote(a)).collect();

        let vng = find_vng(self.root)?;
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(dir) = vng.parent() {
            // vng needs virtme-run, which lives beside it in the venv.
            let mut dirs = vec![dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            path = std::env::join_paths(dirs)?;
        }

        eprintln!(
            "kdbus-vmtest: booting {} under TCG to run {} command(s)",
            self.kernel.release,
            commands.len()
        );
        let mut child = Command::new(&vng)
            .env("PATH", path)
            .current_dir(self.root)
            .arg("-r")
            .arg(&self.kernel.image)
            .args([
                "--disable-kvm",
                "--cpus",
                "2",
                "--memory",
                "2G",
                "--rw",
                "--exec",
            ])
            .arg(guest.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", vng.display()))?;

        // Forward the guest's output as it comes, so a hang is visible.
        let (tx, rx) = mpsc::channel::<()>();
        let out = child.stdout.take().map(|s| forward(s, tx.clone(), false));
        let err = child.stderr.take().map(|s| forward(s, tx, true));
        let started = Instant::now();
        let mut timed_out = false;
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if started.elapsed() > self.timeout {
                timed_out = true;
                child.kill().ok();
                child.wait().ok();
                break;
            }
            let _ = rx.recv_timeout(Duration::from_millis(200));
        }
        for h in [out, err].into_iter().flatten() {
            h.join().ok();
        }

        let status = std::fs::read_to_string(results.join("status"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let rmmod_failure = std::fs::read_to_string(results.join("rmmod")).ok();
        let log = std::fs::read_to_string(results.join("dmesg")).unwrap_or_default();
        let trouble = dmesg::trouble(&log)
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(Verdict {
            status,
            rmmod_failure,
            trouble,
            timed_out,
            results,
        })
    }
}

impl Verdict {
    pub fn passed(&self) -> bool {
        !self.timed_out
            && self.status == Some(0)
            && self.rmmod_failure.is_none()
            && self.trouble.is_empty()
    }

    pub fn report(&self) {
        let mut problems = Vec::new();
        if self.timed_out {
            problems.push("the VM did not finish in time".to_owned());
        }
        match self.status {
            Some(0) => {}
            Some(125) => problems.push("insmod kdbus.ko failed in the VM".to_owned()),
            Some(_) => problems.push("a test command failed".to_owned()),
            None => problems.push("the guest left no exit status (VM crashed?)".to_owned()),
        }
        if let Some(r) = &self.rmmod_failure {
            problems.push(format!("module unload failed: {}", r.trim()));
        }
        if !self.trouble.is_empty() {
            problems.push(format!(
                "kernel log shows trouble:\n    {}",
                self.trouble.join("\n    ")
            ));
        }
        if problems.is_empty() {
            eprintln!(
                "kdbus-vmtest: PASS (module loaded, tests passed, rmmod clean, kernel log clean)"
            );
        } else {
            eprintln!("kdbus-vmtest: FAIL");
            for p in problems {
                eprintln!("  - {p}");
            }
            eprintln!(
                "  (guest kernel log: {})",
                self.results.join("dmesg").display()
            );
        }
    }
}

fn forward(
    stream: impl std::io::Read + Send + 'static,
    tick: mpsc::Sender<()>,
    to_stderr: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            let _ = tick.send(());
        }
    })
}

/// `$VNG`, the project's venv (made by `make deps`), or PATH.
fn find_vng(root: &Path) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os("VNG") {
        return Ok(PathBuf::from(v));
    }
    let venv = root.join(".venv/bin/vng");
    if venv.exists() {
        return Ok(venv);
    }
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("vng"))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    match found {
        Some(p) => Ok(p),
        None => bail!("virtme-ng (vng) not found: run `make deps`"),
    }
}

/// Quotes `arg` for /bin/sh.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&b))
    {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_survives_the_shell() {
        for arg in [
            "plain",
            "",
            "two words",
            "it's",
            "$HOME",
            "a\"b",
            "--filter=x y",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(arg)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), arg);
        }
    }
}
