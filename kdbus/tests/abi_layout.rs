//! The ABI on both sides of the ioctl boundary equals the specification:
//! `abi-spec.txt` transcribes the spec's tables; the Rust bindings and the C
//! uapi header (compiled here into a small host program) must print it back
//! line for line.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use kdbus::abi::*;

fn spec() -> Vec<String> {
    include_str!("abi-spec.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The layout of the Rust bindings, in the format of `abi-spec.txt`.
fn rust_layout() -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! size {
        ($s:ident) => {
            out.push(format!("size {} {}", stringify!($s), size_of::<$s>()))
        };
    }
    // `off!(s, c_name)` or `off!(s, c_name => rust_field)` where the Rust
    // field is named differently (a C union or a keyword).
    macro_rules! off {
        ($s:ident, $f:ident) => {
            off!($s, $f => $f)
        };
        ($s:ident, $c:ident => $f:ident) => {
            out.push(format!("offset {}.{} {}", stringify!($s), stringify!($c), offset_of!($s, $f)))
        };
    }
    // Flexible array members start right after the fixed part.
    macro_rules! tail {
        ($s:ident, $c:ident) => {
            out.push(format!(
                "offset {}.{} {}",
                stringify!($s),
                stringify!($c),
                size_of::<$s>()
            ))
        };
    }
    macro_rules! consts {
        ($($c:ident),* $(,)?) => {
            $(out.push(format!("const {} {:#x}", stringify!($c), $c as u64));)*
        };
    }

    size!(kdbus_notify_id_change);
    off!(kdbus_notify_id_change, id);
    off!(kdbus_notify_id_change, flags);
    size!(kdbus_notify_name_change);
    off!(kdbus_notify_name_change, old_id);
    off!(kdbus_notify_name_change, new_id);
    tail!(kdbus_notify_name_change, name);
    size!(kdbus_creds);
    off!(kdbus_creds, uid);
    off!(kdbus_creds, euid);
    off!(kdbus_creds, suid);
    off!(kdbus_creds, fsuid);
    off!(kdbus_creds, gid);
    off!(kdbus_creds, egid);
    off!(kdbus_creds, sgid);
    off!(kdbus_creds, fsgid);
    size!(kdbus_pids);
    off!(kdbus_pids, pid);
    off!(kdbus_pids, tid);
    off!(kdbus_pids, ppid);
    size!(kdbus_caps);
    off!(kdbus_caps, last_cap);
    // caps[] follows the 32-bit last_cap directly.
    out.push(format!(
        "offset kdbus_caps.caps {}",
        offset_of!(kdbus_caps, last_cap) + size_of::<u32>()
    ));
    size!(kdbus_audit);
    off!(kdbus_audit, sessionid);
    off!(kdbus_audit, loginuid);
    size!(kdbus_timestamp);
    off!(kdbus_timestamp, seqnum);
    off!(kdbus_timestamp, monotonic_ns);
    off!(kdbus_timestamp, realtime_ns);
    size!(kdbus_vec);
    off!(kdbus_vec, size);
    off!(kdbus_vec, address => address_or_offset);
    off!(kdbus_vec, offset => address_or_offset);
    size!(kdbus_bloom_parameter);
    off!(kdbus_bloom_parameter, size);
    off!(kdbus_bloom_parameter, n_hash);
    size!(kdbus_bloom_filter);
    off!(kdbus_bloom_filter, generation);
    tail!(kdbus_bloom_filter, data);
    size!(kdbus_memfd);
    off!(kdbus_memfd, start);
    off!(kdbus_memfd, size);
    off!(kdbus_memfd, fd);
    off!(kdbus_memfd, __pad);
    size!(kdbus_name);
    off!(kdbus_name, flags);
    tail!(kdbus_name, name);
    size!(kdbus_policy_access);
    off!(kdbus_policy_access, type => type_);
    off!(kdbus_policy_access, access);
    off!(kdbus_policy_access, id);
    size!(kdbus_item);
    off!(kdbus_item, size);
    off!(kdbus_item, type => type_);
    off!(kdbus_item, data => payload);
    size!(kdbus_msg);
    off!(kdbus_msg, size);
    off!(kdbus_msg, flags);
    off!(kdbus_msg, priority);
    off!(kdbus_msg, dst_id);
    off!(kdbus_msg, src_id);
    off!(kdbus_msg, payload_type);
    off!(kdbus_msg, cookie);
    off!(kdbus_msg, timeout_ns => timeout_ns_or_cookie_reply);
    off!(kdbus_msg, cookie_reply => timeout_ns_or_cookie_reply);
    tail!(kdbus_msg, items);
    size!(kdbus_msg_info);
    off!(kdbus_msg_info, offset);
    off!(kdbus_msg_info, msg_size);
    off!(kdbus_msg_info, return_flags);
    size!(kdbus_cmd_send);
    off!(kdbus_cmd_send, size);
    off!(kdbus_cmd_send, flags);
    off!(kdbus_cmd_send, return_flags);
    off!(kdbus_cmd_send, msg_address);
    off!(kdbus_cmd_send, reply);
    tail!(kdbus_cmd_send, items);
    size!(kdbus_cmd_recv);
    off!(kdbus_cmd_recv, size);
    off!(kdbus_cmd_recv, flags);
    off!(kdbus_cmd_recv, return_flags);
    off!(kdbus_cmd_recv, priority);
    off!(kdbus_cmd_recv, dropped_msgs);
    off!(kdbus_cmd_recv, msg);
    tail!(kdbus_cmd_recv, items);
    size!(kdbus_cmd_free);
    off!(kdbus_cmd_free, size);
    off!(kdbus_cmd_free, flags);
    off!(kdbus_cmd_free, return_flags);
    off!(kdbus_cmd_free, offset);
    tail!(kdbus_cmd_free, items);
    size!(kdbus_cmd_hello);
    off!(kdbus_cmd_hello, size);
    off!(kdbus_cmd_hello, flags);
    off!(kdbus_cmd_hello, return_flags);
    off!(kdbus_cmd_hello, attach_flags_send);
    off!(kdbus_cmd_hello, attach_flags_recv);
    off!(kdbus_cmd_hello, bus_flags);
    off!(kdbus_cmd_hello, id);
    off!(kdbus_cmd_hello, pool_size);
    off!(kdbus_cmd_hello, offset);
    off!(kdbus_cmd_hello, items_size);
    off!(kdbus_cmd_hello, id128);
    tail!(kdbus_cmd_hello, items);
    size!(kdbus_info);
    off!(kdbus_info, size);
    off!(kdbus_info, id);
    off!(kdbus_info, flags);
    tail!(kdbus_info, items);
    size!(kdbus_cmd_list);
    off!(kdbus_cmd_list, size);
    off!(kdbus_cmd_list, flags);
    off!(kdbus_cmd_list, return_flags);
    off!(kdbus_cmd_list, offset);
    off!(kdbus_cmd_list, list_size);
    tail!(kdbus_cmd_list, items);
    size!(kdbus_cmd_info);
    off!(kdbus_cmd_info, size);
    off!(kdbus_cmd_info, flags);
    off!(kdbus_cmd_info, return_flags);
    off!(kdbus_cmd_info, id);
    off!(kdbus_cmd_info, attach_flags);
    off!(kdbus_cmd_info, offset);
    off!(kdbus_cmd_info, info_size);
    tail!(kdbus_cmd_info, items);
    size!(kdbus_cmd_match);
    off!(kdbus_cmd_match, size);
    off!(kdbus_cmd_match, flags);
    off!(kdbus_cmd_match, return_flags);
    off!(kdbus_cmd_match, cookie);
    tail!(kdbus_cmd_match, items);
    size!(kdbus_cmd);
    off!(kdbus_cmd, size);
    off!(kdbus_cmd, flags);
    off!(kdbus_cmd, return_flags);
    tail!(kdbus_cmd, items);

    consts!(
        KDBUS_IOCTL_MAGIC,
        KDBUS_SRC_ID_KERNEL,
        KDBUS_DST_ID_NAME,
        KDBUS_MATCH_ID_ANY,
        KDBUS_DST_ID_BROADCAST,
        KDBUS_FLAG_NEGOTIATE,
        KDBUS_PAYLOAD_KERNEL,
        KDBUS_PAYLOAD_DBUS,
        _KDBUS_ITEM_NULL,
        _KDBUS_ITEM_USER_BASE,
        KDBUS_ITEM_NEGOTIATE,
        KDBUS_ITEM_PAYLOAD_VEC,
        KDBUS_ITEM_PAYLOAD_OFF,
        KDBUS_ITEM_PAYLOAD_MEMFD,
        KDBUS_ITEM_FDS,
        KDBUS_ITEM_CANCEL_FD,
        KDBUS_ITEM_BLOOM_PARAMETER,
        KDBUS_ITEM_BLOOM_FILTER,
        KDBUS_ITEM_BLOOM_MASK,
        KDBUS_ITEM_DST_NAME,
        KDBUS_ITEM_MAKE_NAME,
        KDBUS_ITEM_ATTACH_FLAGS_SEND,
        KDBUS_ITEM_ATTACH_FLAGS_RECV,
        KDBUS_ITEM_ID,
        KDBUS_ITEM_NAME,
        KDBUS_ITEM_DST_ID,
        _KDBUS_ITEM_ATTACH_BASE,
        KDBUS_ITEM_TIMESTAMP,
        KDBUS_ITEM_CREDS,
        KDBUS_ITEM_PIDS,
        KDBUS_ITEM_AUXGROUPS,
        KDBUS_ITEM_OWNED_NAME,
        KDBUS_ITEM_TID_COMM,
        KDBUS_ITEM_PID_COMM,
        KDBUS_ITEM_EXE,
        KDBUS_ITEM_CMDLINE,
        KDBUS_ITEM_CGROUP,
        KDBUS_ITEM_CAPS,
        KDBUS_ITEM_SECLABEL,
        KDBUS_ITEM_AUDIT,
        KDBUS_ITEM_CONN_DESCRIPTION,
        _KDBUS_ITEM_POLICY_BASE,
        KDBUS_ITEM_POLICY_ACCESS,
        _KDBUS_ITEM_KERNEL_BASE,
        KDBUS_ITEM_NAME_ADD,
        KDBUS_ITEM_NAME_REMOVE,
        KDBUS_ITEM_NAME_CHANGE,
        KDBUS_ITEM_ID_ADD,
        KDBUS_ITEM_ID_REMOVE,
        KDBUS_ITEM_REPLY_TIMEOUT,
        KDBUS_ITEM_REPLY_DEAD,
        KDBUS_ATTACH_TIMESTAMP,
        KDBUS_ATTACH_CREDS,
        KDBUS_ATTACH_PIDS,
        KDBUS_ATTACH_AUXGROUPS,
        KDBUS_ATTACH_NAMES,
        KDBUS_ATTACH_TID_COMM,
        KDBUS_ATTACH_PID_COMM,
        KDBUS_ATTACH_EXE,
        KDBUS_ATTACH_CMDLINE,
        KDBUS_ATTACH_CGROUP,
        KDBUS_ATTACH_CAPS,
        KDBUS_ATTACH_SECLABEL,
        KDBUS_ATTACH_AUDIT,
        KDBUS_ATTACH_CONN_DESCRIPTION,
        _KDBUS_ATTACH_ALL,
        _KDBUS_ATTACH_ANY,
        KDBUS_HELLO_ACCEPT_FD,
        KDBUS_HELLO_ACTIVATOR,
        KDBUS_HELLO_POLICY_HOLDER,
        KDBUS_HELLO_MONITOR,
        KDBUS_MSG_EXPECT_REPLY,
        KDBUS_MSG_NO_AUTO_START,
        KDBUS_MSG_SIGNAL,
        KDBUS_SEND_SYNC_REPLY,
        KDBUS_RECV_PEEK,
        KDBUS_RECV_DROP,
        KDBUS_RECV_USE_PRIORITY,
        KDBUS_RECV_RETURN_INCOMPLETE_FDS,
        KDBUS_RECV_RETURN_DROPPED_MSGS,
        KDBUS_NAME_REPLACE_EXISTING,
        KDBUS_NAME_ALLOW_REPLACEMENT,
        KDBUS_NAME_QUEUE,
        KDBUS_NAME_IN_QUEUE,
        KDBUS_NAME_ACTIVATOR,
        KDBUS_NAME_PRIMARY,
        KDBUS_NAME_ACQUIRED,
        KDBUS_LIST_UNIQUE,
        KDBUS_LIST_NAMES,
        KDBUS_LIST_ACTIVATORS,
        KDBUS_LIST_QUEUED,
        KDBUS_MATCH_REPLACE,
        KDBUS_MAKE_ACCESS_GROUP,
        KDBUS_MAKE_ACCESS_WORLD,
        _KDBUS_POLICY_ACCESS_NULL,
        KDBUS_POLICY_ACCESS_USER,
        KDBUS_POLICY_ACCESS_GROUP,
        KDBUS_POLICY_ACCESS_WORLD,
        KDBUS_POLICY_SEE,
        KDBUS_POLICY_TALK,
        KDBUS_POLICY_OWN,
        KDBUS_CMD_BUS_MAKE,
        KDBUS_CMD_ENDPOINT_MAKE,
        KDBUS_CMD_ENDPOINT_UPDATE,
        KDBUS_CMD_HELLO,
        KDBUS_CMD_UPDATE,
        KDBUS_CMD_BYEBYE,
        KDBUS_CMD_FREE,
        KDBUS_CMD_CONN_INFO,
        KDBUS_CMD_BUS_CREATOR_INFO,
        KDBUS_CMD_LIST,
        KDBUS_CMD_SEND,
        KDBUS_CMD_RECV,
        KDBUS_CMD_NAME_ACQUIRE,
        KDBUS_CMD_NAME_RELEASE,
        KDBUS_CMD_MATCH_ADD,
        KDBUS_CMD_MATCH_REMOVE,
    );
    out
}

/// Compares line by line, so that a failure names the first wrong fact.
fn assert_same(side: &str, got: &[String], want: &[String]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g,
            w,
            "{side}: line {} differs from the specification",
            i + 1
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{side}: number of facts differs from the specification"
    );
}

#[test]
fn rust_bindings_match_the_specification() {
    assert_same("Rust bindings", &rust_layout(), &spec());
}

#[test]
fn c_header_matches_the_specification() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let exe = out_dir.join("abi_layout");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("../kmod/include/uapi"))
        .arg(root.join("tests/abi_layout.c"))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e} (install gcc)"));
    assert!(
        status.success(),
        "compiling tests/abi_layout.c against the uapi header failed"
    );

    let output = Command::new(&exe).output().expect("run abi_layout");
    assert!(output.status.success());
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_same("C header", &lines, &spec());
}
