//! Connections in a child user namespace (spec §2.1, §13.3): metadata is
//! translated into the receiver's namespaces, capabilities are relative
//! to the receiver's user namespace, and kdbusfs can be mounted (and used)
//! by the root of a user namespace.
//!
//! The namespace side runs in a helper process: this test binary executed
//! again, with its `helper` test selected, after unshare(CLONE_NEWUSER).
//! The parent writes the helper's id maps (uid 0 and gid 0 map to
//! themselves; everything else is unmapped) and then lets it go.

use std::io::{BufRead, BufReader, Write};

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use kdbus::abi::*;
use kdbus_abi_tests::*;

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

fn spawn_helper(case: &str, env: &[(&str, String)], flags: libc::c_int) -> Child {
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

/// Lines of the helper's stdout that start with `tag`, until it exits.
fn finish(child: Child, tag: &str) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "helper failed:\n{text}");
    // libtest may print "test helper ... " on the same line
    text.lines()
        .filter_map(|l| l.split_once(tag).map(|(_, s)| s.trim().to_owned()))
        .collect()
}

fn effective_caps(m: &Msg) -> u64 {
    let w: Vec<u32> = m
        .item(KDBUS_ITEM_CAPS)
        .unwrap()
        .data
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    w[5] as u64 | (w[6] as u64) << 32
}

#[test]
fn a_receiver_in_a_user_namespace_sees_translated_ids() {
    let bus = Bus::new();
    // everyone may talk to the helper's name
    let _holder = Hello::new()
        .flags(KDBUS_HELLO_POLICY_HOLDER)
        .name("org.ns.helper")
        .access(KDBUS_POLICY_ACCESS_WORLD, KDBUS_POLICY_TALK, 0)
        .connect(&bus.endpoint())
        .unwrap();
    let mut child = spawn_helper(
        "receive",
        &[("KDBUS_NS_ENDPOINT", bus.endpoint().display().to_string())],
        0,
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the helper ended early"
        );
    }

    let root = Hello::new()
        .attach(_KDBUS_ATTACH_ALL, 0)
        .connect(&bus.endpoint())
        .unwrap();
    root.send(&MsgBuilder::to_name("org.ns.helper")).unwrap();
    let ep = bus.endpoint();
    as_user(OTHER, OTHER, move || {
        let c = Hello::new()
            .attach(_KDBUS_ATTACH_ALL, 0)
            .connect(&ep)
            .unwrap();
        c.send(&MsgBuilder::to_name("org.ns.helper")).unwrap();
    });

    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "helper failed:\n{rest}");
    let creds: Vec<&str> = rest
        .lines()
        .filter_map(|l| l.split_once("CREDS ").map(|(_, s)| s))
        .collect();
    assert_eq!(
        creds,
        ["0 0 caps-full", "65534 65534 caps-none"],
        "root maps to 0, the unmapped user to the overflow id; root's \
         capabilities hold in a descendant namespace"
    );
}

#[test]
fn a_sender_in_a_user_namespace_has_no_capabilities_outside() {
    let bus = Bus::new();
    let root = Hello::new()
        .attach(0, _KDBUS_ATTACH_ALL)
        .connect(&bus.endpoint())
        .unwrap();
    root.acquire("org.ns.root", 0).unwrap();
    let child = spawn_helper(
        "send",
        &[("KDBUS_NS_ENDPOINT", bus.endpoint().display().to_string())],
        0,
    );
    finish(child, "SENT");
    let m = root.recv_msg();
    let c: kdbus_creds = m.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
    assert_eq!(c.uid, 0, "the helper's uid 0 is uid 0 outside");
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

/// The namespace side; runs only when started by the tests above.
#[test]
#[ignore = "started by the other tests inside a new user namespace"]
fn helper() {
    let case = std::env::var("KDBUS_NS_CASE").expect("KDBUS_NS_CASE");
    let endpoint = std::env::var("KDBUS_NS_ENDPOINT").unwrap_or_default();
    match case.as_str() {
        "receive" => {
            let c = Hello::new()
                .attach(0, _KDBUS_ATTACH_ALL)
                .connect(std::path::Path::new(&endpoint))
                .unwrap();
            c.acquire("org.ns.helper", 0).unwrap();
            println!("READY {}", c.id);
            std::io::stdout().flush().unwrap();
            for _ in 0..2 {
                let m = c.wait_msg();
                let cr: kdbus_creds = m.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
                let caps = match effective_caps(&m) {
                    0 => "caps-none",
                    _ => "caps-full",
                };
                println!("CREDS {} {} {caps}", cr.uid, cr.gid);
            }
        }
        "send" => {
            let c = Hello::new()
                .attach(_KDBUS_ATTACH_ALL, 0)
                .connect(std::path::Path::new(&endpoint))
                .unwrap();
            c.send(&MsgBuilder::to_name("org.ns.root")).unwrap();
            println!("SENT");
        }
        "mount" => {
            let domain = std::sync::Arc::new(Domain::new());
            println!("OK mount");
            // the domain belongs to this namespace: its uid 0 is "0-"
            assert_eq!(
                Bus::make_in(&domain, "x", 0, &[])
                    .map(|b| b.name.clone())
                    .ok(),
                Some("0-x".to_owned())
            );
            let bus = Bus::make_in(&domain, "ns", KDBUS_MAKE_ACCESS_WORLD, &[]).unwrap();
            println!("OK bus");
            // root of the namespace owns the bus (CAP_IPC_OWNER there)
            let c = bus.conn();
            c.acquire("org.ns.mine", 0).unwrap();
            let act = Hello::new()
                .flags(KDBUS_HELLO_ACTIVATOR)
                .name("org.ns.act")
                .connect(&bus.endpoint())
                .unwrap();
            println!("OK names");
            let info = c.conn_info(c.id, None, KDBUS_ATTACH_CREDS).unwrap();
            let cr: kdbus_creds = info.item(KDBUS_ITEM_CREDS).unwrap().as_struct();
            assert_eq!(cr.uid, 0);
            drop(act);
            println!("OK hello");
        }
        other => panic!("unknown case {other}"),
    }
}
