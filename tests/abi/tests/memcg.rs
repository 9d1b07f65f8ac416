//! Resource accounting: kernel memory a connection makes the
//! module keep on its behalf (match rules, names, ...) is bounded per
//! connection by counts only (256 match entries, each up to the 32 KiB
//! command limit), and there may be 1024 connections per user. Such memory
//! must be charged to the memory cgroup of the task that caused it, so
//! that the usual limits apply to it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kdbus::abi::*;
use kdbus_abi_tests::fixture::*;

const ENV_ENDPOINT: &str = "KDBUS_REVIEW_ENDPOINT";

/// Match entries the helper adds, each with a bloom mask of this many bytes.
const ENTRIES: usize = 256;
const MASK_BYTES: usize = 30 * 1024;

/// A fresh cgroup (v2) with the memory controller, removed on drop.
struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.controllers").exists() {
            rustix::mount::mount(
                "cgroup2",
                root,
                "cgroup2",
                rustix::mount::MountFlags::empty(),
                None,
            )
            .expect("mount cgroup2 on /sys/fs/cgroup");
        }
        // enabling a controller that is enabled already is fine
        std::fs::write(root.join("cgroup.subtree_control"), "+memory")
            .expect("enable the memory controller");
        let path = root.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&path).expect("create a cgroup");
        Cgroup { path }
    }

    fn memory_current(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.current"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Runs in a child process inside the cgroup (see the test below): one
/// connection with ENTRIES large match entries, alive until stdin closes.
#[test]
#[ignore = "helper of match_rules_are_charged_to_the_caller"]
fn helper_many_large_matches() {
    let Some(ep) = std::env::var_os(ENV_ENDPOINT) else {
        return;
    };
    let conn = TestBus::hello().connect(Path::new(&ep)).unwrap();
    let mask = vec![0u8; MASK_BYTES];
    for cookie in 0..ENTRIES as u64 {
        raw_match_add(&conn, cookie, 0, &[(KDBUS_ITEM_BLOOM_MASK, &mask)]).unwrap();
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(conn);
}

#[test]
fn match_rules_are_charged_to_the_caller() {
    // a bloom mask is a multiple of the bus' bloom size
    assert_eq!(MASK_BYTES % BLOOM.size as usize, 0);
    let bus = TestBus::new();
    let cg = Cgroup::new("kdbus-memcg");

    let procs = std::ffi::CString::new(cg.path.join("cgroup.procs").as_os_str().as_encoded_bytes())
        .unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "helper_many_large_matches",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ENV_ENDPOINT, bus.endpoint())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    // SAFETY: the closure only calls async-signal-safe functions (open,
    // write, close) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" moves the writing process
            let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd.spawn().expect("spawn the helper");
    let before = cg.memory_current();

    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the helper ended before it was ready:\n{seen}");
        }
        seen.push_str(&line);
        // libtest prints "test NAME ... " without a newline before the test
        // runs, so "ready" ends that line
        if line.trim_end().ends_with("ready") {
            break;
        }
    }
    let during = cg.memory_current();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "helper:\n{seen}");

    // the rules hold ENTRIES * MASK_BYTES (7.5 MiB) of kernel memory
    let rules = (ENTRIES * MASK_BYTES) as u64;
    assert!(
        during.saturating_sub(before) >= rules * 3 / 4,
        "{ENTRIES} match entries of {MASK_BYTES} bytes grew the cgroup of \
         their owner by {} bytes only",
        during.saturating_sub(before)
    );
}
