//! One QEMU boot (TCG, 2 vCPUs, 1.5 GB) with the serial console captured
//! to a file and, optionally, typed into when a prompt appears.

use std::io::{BufReader, Write};
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

#[derive(Clone)]
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

    /// Did the boot time out before the kernel started the initramfs's
    /// init, that is before any code of ours could run?
    pub fn froze_in_kernel_init(&self) -> bool {
        self.timed_out && !self.contains("Run /init as init process")
    }
}

impl Boot<'_> {
    /// Types the answer to the first pending prompt found in `text`.
    fn respond(
        &self,
        text: &str,
        pending: &mut Vec<(String, String)>,
        stdin: &mut Option<std::process::ChildStdin>,
    ) {
        if let Some(i) = pending.iter().position(|(p, _)| text.contains(p.as_str())) {
            let (_, input) = pending.remove(i);
            if let Some(s) = stdin.as_mut() {
                // Give the shell a moment to finish its prompt.
                thread::sleep(Duration::from_millis(300));
                let _ = s.write_all(input.as_bytes());
                let _ = s.flush();
            }
        }
    }

    pub fn run(&self) -> Result<Console> {
        let mut child = Command::new("qemu-system-x86_64")
            .args([
                "-accel", "tcg", "-smp", "2", "-m", "1536", "-machine", "q35",
            ])
            // RDRAND lets the kernel seed its random generator while it
            // boots on one CPU. Without it the seeding completes in
            // userspace, and the code patching it sets off has hung both
            // vCPUs of QEMU's multi-threaded TCG
            // (`__x64_sys_getrandom+0x73` in a soft-lockup report).
            .args(["-cpu", "qemu64,+rdrand"])
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
        // Raw chunks, not lines: a shell prompt has no newline after it.
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut stdout, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
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
        let mut partial: Vec<u8> = Vec::new();
        let mut pending: Vec<(String, String)> = self.responses.clone();
        let mut timed_out = false;
        loop {
            let mut closed = false;
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(chunk) => partial.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => closed = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            // Complete lines (the console mixes CR LF and bare CR).
            while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = partial.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&raw).replace('\r', "");
                let line = line.trim_end_matches('\n').to_owned();
                let _ = writeln!(log, "{line}");
                if self.echo {
                    eprintln!("  | {line}");
                }
                self.respond(&line, &mut pending, &mut stdin);
                lines.push(line);
            }
            // A prompt waiting at the end of an unfinished line.
            if !partial.is_empty() {
                let tail = String::from_utf8_lossy(&partial).replace('\r', "");
                self.respond(&tail, &mut pending, &mut stdin);
            }
            if closed {
                if !partial.is_empty() {
                    lines.push(String::from_utf8_lossy(&partial).replace('\r', ""));
                }
                break;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn console(lines: &[&str], timed_out: bool) -> Console {
        Console {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            timed_out,
            elapsed: Duration::from_secs(300),
        }
    }

    #[test]
    fn only_a_timeout_before_init_is_a_freeze_in_kernel_init() {
        let early = ["[    1.06] NET: Registered PF_INET protocol family"];
        let late = [
            "[    4.86] Run /init as init process",
            "[   30.00] kdbus-init[1]: ...",
        ];
        assert!(console(&early, true).froze_in_kernel_init());
        assert!(!console(&early, false).froze_in_kernel_init());
        assert!(!console(&late, true).froze_in_kernel_init());
    }
}
