//! The activation state machine of one activatable name, without any I/O:
//! what follows a start attempt and what each periodic check decides. The
//! daemon feeds it what it observed (is a message queued on the activator,
//! did the started process exit, what time is it) and carries out the
//! outcome. A restarted kdbus-init resumes from the published state: a name
//! that was `Starting` is not started again (the service may be on its way
//! to the name), only after the start timed out.

use std::time::Duration;

use bootenv::status::Activation;

/// Start attempts per name before giving up (until the next message after
/// a switch, or SIGHUP).
pub const MAX_ATTEMPTS: u32 = 3;
/// A started service must take its name within this time.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The first retry waits this long, each following one three times more.
const FIRST_RETRY_US: u64 = 5_000_000;

/// What an attempt to start the service did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `systemctl start --no-block UNIT` is running.
    Systemd { unit: String },
    /// The service's `Exec=` is running.
    Direct { cmd: String },
    /// Neither its unit nor its program is in this root: wait for the next.
    NotHere { reason: String },
    /// The attempt itself failed.
    Failed { error: String },
}

/// An attempt that failed, for the problem list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    pub attempts: u32,
    /// Another attempt follows (else the messages wait for other means).
    pub retrying: bool,
}

/// The result of a transition: the new state and what to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Activation,
    /// An event for the activation timeline.
    pub record: Option<String>,
    pub failure: Option<Failure>,
}

/// What a periodic check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Nothing changes.
    Wait,
    /// Change state (and report).
    Step(Step),
    /// (Re)try starting the service now.
    Start,
}

/// What the daemon observed about one activator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// A message waits on the activator.
    pub queued: bool,
    /// The process started for it exited: (success, description).
    pub exited: Option<(bool, String)>,
    /// CLOCK_MONOTONIC, microseconds.
    pub now_us: u64,
}

/// The number of the attempt that starts from `current`.
pub fn next_attempt(current: &Activation) -> u32 {
    match current {
        Activation::Starting { attempts, .. } | Activation::Failed { attempts, .. } => attempts + 1,
        _ => 1,
    }
}

fn failed(error: String, attempts: u32, now_us: u64) -> Step {
    let retry_us = (attempts < MAX_ATTEMPTS)
        .then(|| now_us + FIRST_RETRY_US * 3u64.pow(attempts.saturating_sub(1)));
    Step {
        record: Some(format!("failed: {error}")),
        failure: Some(Failure {
            error: error.clone(),
            attempts,
            retrying: retry_us.is_some(),
        }),
        next: Activation::Failed {
            error,
            attempts,
            retry_us,
        },
    }
}

/// After an attempt to start the service.
pub fn launched(current: &Activation, launch: Launch, now_us: u64) -> Step {
    let attempts = next_attempt(current);
    match launch {
        Launch::Systemd { unit } => Step {
            record: Some(format!("started {unit} through systemd")),
            failure: None,
            next: Activation::Starting {
                how: format!("systemctl start {unit}"),
                since_us: now_us,
                attempts,
            },
        },
        Launch::Direct { cmd } => Step {
            record: Some(format!("started {cmd}")),
            failure: None,
            next: Activation::Starting {
                how: cmd,
                since_us: now_us,
                attempts,
            },
        },
        Launch::NotHere { reason } => Step {
            // Said once, not at every retry.
            record: (!matches!(current, Activation::Deferred { .. }))
                .then(|| format!("deferred: {reason}")),
            failure: None,
            next: Activation::Deferred { reason },
        },
        Launch::Failed { error } => failed(error, attempts, now_us),
    }
}

/// The periodic check of one activator.
pub fn check(current: &Activation, seen: Observed) -> Check {
    match current {
        Activation::Starting {
            how,
            since_us,
            attempts,
        } => {
            if !seen.queued {
                Check::Step(Step {
                    next: Activation::Idle,
                    record: Some("service took the name; queued messages handed over".into()),
                    failure: None,
                })
            } else if let Some((false, detail)) = seen.exited {
                Check::Step(failed(
                    format!("{how} exited with {detail}"),
                    *attempts,
                    seen.now_us,
                ))
            } else if seen.now_us.saturating_sub(*since_us) > START_TIMEOUT.as_micros() as u64 {
                Check::Step(failed(
                    format!(
                        "the service did not take the name within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                    *attempts,
                    seen.now_us,
                ))
            } else {
                Check::Wait
            }
        }
        // What kept it from starting may be gone (systemd ready).
        Activation::Deferred { .. } if seen.queued => Check::Start,
        // Started by other means (systemd takes its own name when it
        // connects): the owner has the queued messages now.
        Activation::Deferred { .. } => Check::Step(Step {
            next: Activation::Idle,
            record: Some(
                "the name was taken without a start from here; queued messages handed over".into(),
            ),
            failure: None,
        }),
        Activation::Failed {
            retry_us: Some(at), ..
        } if *at <= seen.now_us && seen.queued => Check::Start,
        Activation::Failed { .. } if !seen.queued => Check::Step(Step {
            next: Activation::Idle,
            record: None,
            failure: None,
        }),
        _ => Check::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(queued: bool, exited: Option<(bool, &str)>, now_us: u64) -> Observed {
        Observed {
            queued,
            exited: exited.map(|(ok, d)| (ok, d.to_owned())),
            now_us,
        }
    }

    fn starting(since_us: u64, attempts: u32) -> Activation {
        Activation::Starting {
            how: "systemctl start late.service".into(),
            since_us,
            attempts,
        }
    }

    #[test]
    fn a_started_service_that_takes_its_name_goes_back_to_idle() {
        let step = launched(
            &Activation::Idle,
            Launch::Systemd {
                unit: "late.service".into(),
            },
            1_000,
        );
        assert_eq!(step.next, starting(1_000, 1));
        assert_eq!(
            step.record.as_deref(),
            Some("started late.service through systemd")
        );
        // Still queued and running: wait.
        assert_eq!(check(&step.next, seen(true, None, 2_000)), Check::Wait);
        // The queue moved to the service.
        let Check::Step(done) = check(&step.next, seen(false, None, 3_000)) else {
            panic!("no step")
        };
        assert_eq!(done.next, Activation::Idle);
        assert!(done.record.unwrap().contains("took the name"));
    }

    #[test]
    fn a_deferred_name_is_said_once_and_started_when_something_waits() {
        let not_here = || Launch::NotHere {
            reason: "late is not in this root".into(),
        };
        let first = launched(&Activation::Idle, not_here(), 0);
        assert!(first.record.is_some());
        let again = launched(&first.next, not_here(), 0);
        assert_eq!(again.record, None);
        assert_eq!(again.next, first.next);
        assert_eq!(check(&first.next, seen(true, None, 0)), Check::Start);
        // Its messages are gone: an owner came by other means and has them.
        let Check::Step(taken) = check(&first.next, seen(false, None, 0)) else {
            panic!("no step")
        };
        assert_eq!(taken.next, Activation::Idle);
        assert!(taken.record.unwrap().contains("name was taken"));
    }

    #[test]
    fn failures_retry_with_growing_delays_then_stop() {
        let mut state = Activation::Idle;
        let mut retries = Vec::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let step = launched(
                &state,
                Launch::Failed {
                    error: "no such user".into(),
                },
                0,
            );
            let failure = step.failure.clone().unwrap();
            assert_eq!(failure.attempts, attempt);
            assert_eq!(failure.retrying, attempt < MAX_ATTEMPTS);
            let Activation::Failed { retry_us, .. } = &step.next else {
                panic!("not failed: {:?}", step.next)
            };
            retries.push(*retry_us);
            state = step.next;
        }
        assert_eq!(retries, [Some(5_000_000), Some(15_000_000), None]);
        // Due, and a message waits: start again; no message: idle.
        let failed_once = launched(&Activation::Idle, Launch::Failed { error: "x".into() }, 0).next;
        assert_eq!(
            check(&failed_once, seen(true, None, 4_999_999)),
            Check::Wait
        );
        assert_eq!(
            check(&failed_once, seen(true, None, 5_000_000)),
            Check::Start
        );
        let Check::Step(idle) = check(&failed_once, seen(false, None, 0)) else {
            panic!()
        };
        assert_eq!(idle.next, Activation::Idle);
        // No more retries: it waits for other means.
        assert_eq!(check(&state, seen(true, None, u64::MAX)), Check::Wait);
    }

    #[test]
    fn an_exit_or_a_timeout_is_a_failure_of_that_attempt() {
        let s = starting(0, 2);
        let Check::Step(exit) = check(&s, seen(true, Some((false, "status 1")), 10)) else {
            panic!()
        };
        let f = exit.failure.unwrap();
        assert_eq!(f.attempts, 2);
        assert!(f.error.contains("exited with status 1"), "{}", f.error);
        // A successful exit (systemctl --no-block) is no verdict.
        assert_eq!(
            check(&s, seen(true, Some((true, "status 0")), 10)),
            Check::Wait
        );
        let late = START_TIMEOUT.as_micros() as u64 + 1;
        let Check::Step(timeout) = check(&s, seen(true, None, late)) else {
            panic!()
        };
        assert!(timeout
            .failure
            .unwrap()
            .error
            .contains("did not take the name"));
    }

    #[test]
    fn after_a_restart_a_starting_name_is_not_started_twice() {
        // The new process has no child to look at: the old start stands
        // until the service takes the name or the timeout.
        let s = starting(1_000_000, 1);
        assert_eq!(check(&s, seen(true, None, 2_000_000)), Check::Wait);
        let Check::Step(done) = check(&s, seen(false, None, 2_000_000)) else {
            panic!()
        };
        assert_eq!(done.next, Activation::Idle);
        assert_eq!(next_attempt(&s), 2);
    }

    #[test]
    fn idle_names_wait_for_the_poll() {
        assert_eq!(check(&Activation::Idle, seen(true, None, 0)), Check::Wait);
    }
}
