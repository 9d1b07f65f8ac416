//! A module test run under virtme-ng: the guest sees the host's file system,
//! so commands and module cross the VM boundary as files written before the
//! boot; the verdict comes back on the console, between `@@kdbus-vmtest`
//! markers (guest writes may land in an overlay: its /tmp is its own).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
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
    log_file: PathBuf,
}

/// What the guest script reported between its console markers.
#[derive(Debug, Default, PartialEq)]
struct GuestReport {
    status: Option<i32>,
    rmmod_failure: Option<String>,
    dmesg: Vec<String>,
}

impl GuestReport {
    fn parse(console: &[String]) -> GuestReport {
        let mut report = GuestReport::default();
        let mut in_dmesg = false;
        for line in console {
            // The serial console may add carriage returns.
            let line = line.trim_end_matches('\r');
            if in_dmesg {
                if line == "@@kdbus-vmtest dmesg-end" {
                    in_dmesg = false;
                } else {
                    report.dmesg.push(line.to_owned());
                }
            } else if let Some(s) = line.strip_prefix("@@kdbus-vmtest status ") {
                report.status = s.trim().parse().ok();
            } else if let Some(r) = line.strip_prefix("@@kdbus-vmtest rmmod-failed") {
                report.rmmod_failure = Some(format!("rmmod kdbus failed:{r}"));
            } else if line == "@@kdbus-vmtest dmesg-begin" {
                in_dmesg = true;
            }
        }
        report
    }
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
            self.module.display().to_string(),
        ];
        // All commands go into one file: the guest's command line (which
        // carries this invocation, base64-encoded) is cut at 2047 bytes,
        // and a cut command line boots a guest that never runs anything.
        let mut all = String::from("status=0\n");
        for command in commands {
            let line: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
            all.push_str(&format!("{} || status=1\n", line.join(" ")));
        }
        all.push_str("exit $status\n");
        let file = results.join("commands.sh");
        std::fs::write(&file, all)?;
        guest.push(file.display().to_string());
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
            // its own process group, so that a timeout also ends QEMU
            .process_group(0)
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
                // vng, and QEMU below it, which holds the output pipes
                let group = rustix::process::Pid::from_child(&child);
                rustix::process::kill_process_group(group, rustix::process::Signal::KILL).ok();
                child.wait().ok();
                break;
            }
            let _ = rx.recv_timeout(Duration::from_millis(200));
        }
        let mut console = Vec::new();
        for h in [out, err].into_iter().flatten() {
            console.extend(h.join().unwrap_or_default());
        }

        let guest = GuestReport::parse(&console);
        let log_file = results.join("dmesg");
        std::fs::write(&log_file, guest.dmesg.join("\n"))?;
        let trouble = dmesg::trouble(&guest.dmesg.join("\n"))
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(Verdict {
            status: guest.status,
            rmmod_failure: guest.rmmod_failure,
            trouble,
            timed_out,
            log_file,
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
            eprintln!("  (guest kernel log: {})", self.log_file.display());
        }
    }
}

/// Copies the guest's output to ours as it comes (the kernel log frame is
/// kept back: it is judged, and shown only on failure) and returns it.
fn forward(
    stream: impl std::io::Read + Send + 'static,
    tick: mpsc::Sender<()>,
    to_stderr: bool,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut lines = Vec::new();
        let mut in_dmesg = false;
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let marker = line.trim_end_matches('\r');
            let quiet = in_dmesg || marker.starts_with("@@kdbus-vmtest");
            in_dmesg = (in_dmesg || marker == "@@kdbus-vmtest dmesg-begin")
                && marker != "@@kdbus-vmtest dmesg-end";
            if !quiet && to_stderr {
                eprintln!("{line}");
            } else if !quiet {
                println!("{line}");
            }
            lines.push(line);
            let _ = tick.send(());
        }
        lines
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
    use super::{shell_quote, GuestReport};

    #[test]
    fn guest_report_is_read_from_the_console() {
        let console: Vec<String> = [
            "test result: ok. 1 passed\r",
            "@@kdbus-vmtest rmmod-failed kdbus 16384 1",
            "@@kdbus-vmtest status 0",
            "@@kdbus-vmtest dmesg-begin",
            "[ 1.0] kdbus-vmtest: loading kdbus.ko\r",
            "[ 1.1] WARNING: at kmod/pool.c",
            "@@kdbus-vmtest dmesg-end",
        ]
        .map(str::to_owned)
        .to_vec();
        let report = GuestReport::parse(&console);
        assert_eq!(report.status, Some(0));
        assert_eq!(
            report.rmmod_failure.as_deref(),
            Some("rmmod kdbus failed: kdbus 16384 1")
        );
        assert_eq!(
            report.dmesg,
            [
                "[ 1.0] kdbus-vmtest: loading kdbus.ko",
                "[ 1.1] WARNING: at kmod/pool.c"
            ]
        );
    }

    #[test]
    fn missing_markers_mean_no_status() {
        let report = GuestReport::parse(&["Kernel panic".to_owned()]);
        assert_eq!(report.status, None);
    }

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
