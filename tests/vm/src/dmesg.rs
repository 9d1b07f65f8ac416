//! Reading the guest's kernel log for signs of kernel trouble.

/// Markers of an oops, a BUG, a WARNING or a leak report. Any of them fails
/// the run, whatever the test itself said.
const BAD: &[&str] = &[
    "Oops",
    "BUG:",
    "BUG kdbus",
    "WARNING:",
    "general protection fault",
    "Call Trace:",
    "kernel BUG at",
    "UBSAN:",
    "refcount_t:",
    "list_add corruption",
    "list_del corruption",
    "Objects remaining",
    "INFO: task",
    "soft lockup",
    "hung_task",
    "kdbus: leaked",
];

/// The lines of `log` that show kernel trouble.
pub fn trouble(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| BAD.iter().any(|b| l.contains(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::trouble;

    #[test]
    fn clean_log_has_no_trouble() {
        let log = "[    1.0] kdbus: loading out-of-tree module taints kernel.\n\
                   [    1.1] kdbus: module verification failed: signature and/or required key missing - tainting kernel\n";
        assert!(trouble(log).is_empty());
    }

    #[test]
    fn oops_warning_and_leaks_are_trouble() {
        let log =
            "[ 2.0] WARNING: CPU: 0 PID: 1 at kmod/pool.c:10 kdbus_pool_free+0x1/0x2 [kdbus]\n\
                   [ 2.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
                   [ 2.2] kdbus: leaked 3 connections\n\
                   [ 2.3] all fine here\n";
        assert_eq!(trouble(log).len(), 3);
    }
}
