//! Connections in child user and pid namespaces (spec §2.1, §13.3):
//! metadata is translated into the receiver's namespaces (ids of the user
//! namespace, pids of the pid namespace the receiver had at HELLO),
//! capabilities are relative to the receiver's user namespace, and kdbusfs
//! can be mounted (and used) by the root of a user namespace.
//!
//! The namespace side runs in a helper process: this test binary executed
//! again, with its `helper` test selected, after unshare(CLONE_NEWUSER) or
//! as the first process of a new pid namespace. The parent writes a user
//! namespace helper's id maps (uid 0 and gid 0 map to themselves;
//! everything else is unmapped) and then lets it go.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};

use kdbus::{
    Access, AttachFlags, CapSet, Connection, HelloBuilder, Message, MessageBuilder, NameFlags,
    Peer, PolicyAccess,
};
use kdbus_abi_tests::fixture::*;
use kdbus_abi_tests::{as_user, Domain};

const OTHER: u32 = 1000;

/// write(2) of `data` to the NUL-terminated `path`, async-signal-safe.
fn write_file(path: &[u8], data: &[u8]) -> std::io::Result<()> {
    assert_eq!(path.last(), Some(&0));
    // SAFETY: plain system calls on a NUL-terminated path and a byte
    // buffer that outlive them.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n != data.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The helper process running `case`, its stdout piped.
fn helper_command(case: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KDBUS_NS_CASE", case)
    .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The helper in a new user namespace (and the namespaces in `flags`).
fn spawn_helper(case: &str, env: &[(&str, String)], flags: libc::c_int) -> Child {
    let mut cmd = helper_command(case, env);
    // SAFETY: between fork and exec only async-signal-safe system calls
    // run, on static data. The maps must be in place before exec, or exec
    // drops the capabilities of the (then unmapped) root.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWUSER | flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // a process may map its own ids: uid 0 and gid 0 stay 0
            write_file(b"/proc/self/setgroups\0", b"deny")?;
            write_file(b"/proc/self/uid_map\0", b"0 0 1")?;
            write_file(b"/proc/self/gid_map\0", b"0 0 1")?;
            Ok(())
        });
    }
    cmd.spawn().expect("spawn the namespace helper")
}

/// The helper as the first process (pid 1) of a new pid namespace.
fn spawn_in_pid_namespace(case: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = helper_command(case, env);
    // unshare(CLONE_NEWPID) moves the *children* of the calling thread
    // into a new namespace; a thread of its own keeps the rest of this
    // process (and the other tests) where they are.
    std::thread::spawn(move || {
        // SAFETY: a plain system call without pointers.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            panic!("unshare(CLONE_NEWPID): {}", std::io::Error::last_os_error());
        }
        cmd.spawn().expect("spawn the pid namespace helper")
    })
    .join()
    .expect("spawning thread panicked")
}

/// Reads the helper's stdout up to its `READY <id>` line; returns the id.
fn wait_ready(out: &mut BufReader<ChildStdout>) -> u64 {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the helper ended early"
        );
        if let Some((_, id)) = line.split_once("READY ") {
            return id.trim().parse().expect("READY <id>");
        }
    }
}

/// Lines of the helper's stdout that start with `tag`, until it exits.
fn finish(child: Child, tag: &str) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "helper failed:\n{text}");
    lines_tagged(&text, tag)
}

/// What follows `tag` on each line that has it (libtest may print "test
/// helper ... " on the same line).
fn lines_tagged(text: &str, tag: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(tag).map(|(_, s)| s.trim().to_owned()))
        .collect()
}

/// Waits for the helper to exit successfully and returns all it printed
/// after `out`'s current position.
fn rest_of(mut child: Child, mut out: BufReader<ChildStdout>) -> String {
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "helper failed:\n{rest}");
    rest
}

fn effective_caps(m: &Message<'_>) -> u64 {
    m.metadata()
        .caps
        .expect("CAPS item")
        .mask(CapSet::Effective)
}

fn hello_sending(flags: AttachFlags) -> HelloBuilder {
    HelloBuilder::new().attach_send(flags)
}

fn hello_receiving(flags: AttachFlags) -> HelloBuilder {
    HelloBuilder::new().attach_recv(flags)
}

#[test]
fn a_receiver_in_a_user_namespace_sees_translated_ids() {
    let bus = TestBus::new();
    // everyone may talk to the helper's name
    let _holder = bus.connect(
        HelloBuilder::new().policy_holder("org.ns.helper", &[PolicyAccess::world(Access::Talk)]),
    );
    let mut child = spawn_helper(
        "receive",
        &[("KDBUS_NS_ENDPOINT", bus.endpoint().display().to_string())],
        0,
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_ready(&mut out);

    let root = bus.connect(hello_sending(AttachFlags::all()));
    root.send(&MessageBuilder::to_name("org.ns.helper"))
        .unwrap();
    let ep = bus.endpoint();
    as_user(OTHER, OTHER, move || {
        let c = hello_sending(AttachFlags::all()).connect(&ep).unwrap();
        c.send(&MessageBuilder::to_name("org.ns.helper")).unwrap();
    });

    let rest = rest_of(child, out);
    assert_eq!(
        lines_tagged(&rest, "CREDS "),
        ["0 0 caps-full", "65534 65534 caps-none"],
        "root maps to 0, the unmapped user to the overflow id; root's \
         capabilities hold in a descendant namespace"
    );
}

#[test]
fn a_sender_in_a_user_namespace_has_no_capabilities_outside() {
    let bus = TestBus::new();
    let root = bus.connect(hello_receiving(AttachFlags::all()));
    root.acquire_name("org.ns.root", NameFlags::empty())
        .unwrap();
    let child = spawn_helper(
        "send",
        &[("KDBUS_NS_ENDPOINT", bus.endpoint().display().to_string())],
        0,
    );
    finish(child, "SENT");
    let m = recv_msg(&root);
    assert_eq!(
        m.metadata().creds.expect("CREDS").uid,
        0,
        "the helper's uid 0 is uid 0 outside"
    );
    assert_eq!(
        effective_caps(&m),
        0,
        "capabilities of a child namespace do not count outside"
    );
}

#[test]
fn kdbusfs_can_be_mounted_in_a_user_namespace() {
    let child = spawn_helper("mount", &[], libc::CLONE_NEWNS);
    let lines = finish(child, "OK");
    assert_eq!(lines, ["mount", "bus", "names", "hello"]);
}

/// Pids as `pid tid ppid`.
fn pids_of(pids: Option<kdbus::Pids>) -> String {
    let p = pids.expect("PIDS item");
    format!("{} {} {}", p.pid, p.tid, p.ppid)
}

/// Spec §13.3: pids are those of the receiver's pid namespace, 0 where the
/// process is not visible there — on messages and in CONN_INFO. A
/// receiver in a child namespace sees its own pids translated (pid 1, its
/// parent outside reads 0) and a sender outside as 0 0 0; the receiver
/// outside sees the helper with its pids of the initial namespace.
#[test]
fn pids_are_translated_into_the_receivers_pid_namespace() {
    let bus = TestBus::new();
    let _holder = bus.connect(
        HelloBuilder::new().policy_holder("org.ns.pids", &[PolicyAccess::world(Access::Talk)]),
    );
    let mut child = spawn_in_pid_namespace(
        "pids",
        &[("KDBUS_NS_ENDPOINT", bus.endpoint().display().to_string())],
    );
    let helper_pid = child.id() as u64;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let helper_id = wait_ready(&mut out);

    let outside = bus.connect(
        HelloBuilder::new()
            .attach_send(AttachFlags::PIDS)
            .attach_recv(AttachFlags::PIDS),
    );
    outside
        .send(&MessageBuilder::to_name("org.ns.pids"))
        .unwrap();
    // the helper answers to the sender's id
    let m = wait_msg(&outside);
    assert_eq!(m.src_id(), helper_id);
    let seen = m.metadata().pids.expect("PIDS item");
    assert_eq!(
        (seen.pid, seen.ppid),
        (helper_pid, std::process::id() as u64),
        "outside, the helper has its pids of the initial namespace"
    );
    assert_ne!(seen.tid, 0);
    let info = outside
        .conn_info(Peer::Id(helper_id), AttachFlags::PIDS)
        .unwrap();
    assert_eq!(
        info.metadata.pids.map(|p| (p.pid, p.ppid)),
        Some((helper_pid, std::process::id() as u64)),
        "CONN_INFO from outside: pids of the initial namespace"
    );
    drop(m);
    // the helper stays connected until told it may go
    outside
        .send(&MessageBuilder::to_id(helper_id).payload(b"done"))
        .unwrap();

    let rest = rest_of(child, out);
    let me = lines_tagged(&rest, "SELF ");
    assert_eq!(me.len(), 1, "{rest}");
    let (pid, tid) = me[0].split_once(' ').unwrap();
    assert_eq!(pid, "1", "the helper is pid 1 of its namespace");
    let own = format!("{pid} {tid} 0");
    assert_eq!(
        lines_tagged(&rest, "OUTSIDE_MSG "),
        ["0 0 0"],
        "a sender outside the receiver's namespace has no pids there"
    );
    assert_eq!(lines_tagged(&rest, "OUTSIDE_INFO "), ["0 0 0"]);
    assert_eq!(
        lines_tagged(&rest, "SELF_MSG "),
        std::slice::from_ref(&own),
        "a sender inside: its own pid and tid, the parent outside reads 0"
    );
    assert_eq!(lines_tagged(&rest, "SELF_INFO "), [own]);
}

/// The namespace side; runs only when started by the tests above.
#[test]
#[ignore = "started by the other tests inside a new user or pid namespace"]
fn helper() {
    let case = std::env::var("KDBUS_NS_CASE").expect("KDBUS_NS_CASE");
    let endpoint = std::env::var("KDBUS_NS_ENDPOINT").unwrap_or_default();
    let ready = |c: &Connection| {
        println!("READY {}", c.id());
        std::io::stdout().flush().unwrap();
    };
    match case.as_str() {
        "receive" => {
            let c = hello_receiving(AttachFlags::all())
                .connect(&endpoint)
                .unwrap();
            c.acquire_name("org.ns.helper", NameFlags::empty()).unwrap();
            ready(&c);
            for _ in 0..2 {
                let m = wait_msg(&c);
                let cr = m.metadata().creds.expect("CREDS item");
                let caps = match effective_caps(&m) {
                    0 => "caps-none",
                    _ => "caps-full",
                };
                println!("CREDS {} {} {caps}", cr.uid, cr.gid);
            }
        }
        "send" => {
            let c = hello_sending(AttachFlags::all())
                .connect(&endpoint)
                .unwrap();
            c.send(&MessageBuilder::to_name("org.ns.root")).unwrap();
            println!("SENT");
        }
        "pids" => {
            let pids = AttachFlags::PIDS;
            let c = HelloBuilder::new()
                .attach_send(pids)
                .attach_recv(pids)
                .connect(&endpoint)
                .unwrap();
            c.acquire_name("org.ns.pids", NameFlags::empty()).unwrap();
            ready(&c);
            let m = wait_msg(&c);
            let outside = m.src_id();
            println!("OUTSIDE_MSG {}", pids_of(m.metadata().pids));
            let info = c.conn_info(Peer::Id(outside), pids).unwrap();
            println!("OUTSIDE_INFO {}", pids_of(info.metadata.pids));
            drop(m);

            c.send(&MessageBuilder::to_id(c.id())).unwrap();
            println!("SELF_MSG {}", pids_of(recv_msg(&c).metadata().pids));
            let info = c.conn_info(Peer::Id(c.id()), pids).unwrap();
            println!("SELF_INFO {}", pids_of(info.metadata.pids));
            println!(
                "SELF {} {}",
                rustix::process::getpid().as_raw_nonzero(),
                rustix::thread::gettid().as_raw_nonzero()
            );
            c.send(&MessageBuilder::to_id(outside)).unwrap();
            assert_eq!(wait_msg(&c).payload_to_vec(), b"done");
        }
        "mount" => {
            let domain = std::sync::Arc::new(Domain::new());
            println!("OK mount");
            // the domain belongs to this namespace: its uid 0 is "0-"
            assert_eq!(kdbus::own_name("x"), "0-x");
            TestBus::make_in(&domain, TestBus::builder("x")).expect("BUS_MAKE of 0-x");
            let bus = TestBus::second_in(&domain, "ns").unwrap();
            println!("OK bus");
            // root of the namespace owns the bus (CAP_IPC_OWNER there)
            let c = bus.conn();
            c.acquire_name("org.ns.mine", NameFlags::empty()).unwrap();
            let act = bus.connect(HelloBuilder::new().activator("org.ns.act", &[]));
            println!("OK names");
            let info = c.conn_info(Peer::Id(c.id()), AttachFlags::CREDS).unwrap();
            assert_eq!(info.metadata.creds.expect("CREDS item").uid, 0);
            drop(act);
            println!("OK hello");
        }
        other => panic!("unknown case {other}"),
    }
}
