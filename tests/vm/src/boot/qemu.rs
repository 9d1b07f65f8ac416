//! One QEMU boot (TCG, 2 vCPUs, 1.5 GB) with the serial console captured
//! to a file and, optionally, typed into when a prompt appears.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub struct Boot<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub disk: &'a Path,
    pub cmdline: String,
    pub timeout: Duration,
    pub log: PathBuf,
    /// When a console line contains `.0`, type `.1`.
    pub responses: Vec<(String, String)>,
    /// Echo the console to stderr as it comes.
    pub echo: bool,
}

pub struct Console {
    pub lines: Vec<String>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Console {
    pub fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        self.lines[start..].join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

impl Boot<'_> {
    pub fn run(&self) -> Result<Console> {
        let mut child = Command::new("qemu-system-x86_64")
            .args([
                "-accel", "tcg", "-smp", "2", "-m", "1536", "-machine", "q35",
            ])
            .args([
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-no-reboot",
            ])
            .args(["-nic", "none"])
            .arg("-kernel")
            .arg(self.kernel)
            .arg("-initrd")
            .arg(self.initrd)
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", self.disk.display()))
            .arg("-append")
            .arg(&self.cmdline)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start qemu-system-x86_64 (run `make deps`)")?;
        let mut stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            // The console mixes CR LF and bare CR; split on LF, drop CR.
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).replace('\r', "");
                        if tx.send(line.trim_end_matches('\n').to_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
            s
        });
        let mut log = std::fs::File::create(&self.log)?;
        let started = Instant::now();
        let mut lines = Vec::new();
        let mut pending: Vec<(String, String)> = self.responses.clone();
        let mut timed_out = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let _ = writeln!(log, "{line}");
                    if self.echo {
                        eprintln!("  | {line}");
                    }
                    if let Some(i) = pending.iter().position(|(p, _)| line.contains(p.as_str())) {
                        let (_, input) = pending.remove(i);
                        if let Some(s) = stdin.as_mut() {
                            // Give the shell a moment to finish its prompt.
                            thread::sleep(Duration::from_millis(300));
                            let _ = s.write_all(input.as_bytes());
                            let _ = s.flush();
                        }
                    }
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if started.elapsed() > self.timeout {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
        drop(stdin);
        let _ = child.wait();
        let _ = reader.join();
        let err = err_reader.join().unwrap_or_default();
        if !err.trim().is_empty() {
            let _ = writeln!(log, "--- qemu stderr ---\n{err}");
            lines.push(format!("qemu: {}", err.trim()));
        }
        Ok(Console {
            lines,
            timed_out,
            elapsed: started.elapsed(),
        })
    }
}
