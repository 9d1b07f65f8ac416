//! kdbus-vmtest: runs tests against kdbus.ko inside a virtual machine.
//!
//! The host kernel cannot load modules, so every kernel test boots a Debian
//! kernel under QEMU (TCG): `module` boots the host's own userspace through
//! virtme-ng, loads the freshly built `kmod/kdbus.ko`, runs the given
//! commands, unloads the module and fails on a bad exit status, a failed
//! `rmmod` or any oops, BUG or WARNING in the kernel log. `boot` boots a
//! real Debian 12 root with a `dracut --add kdbus` initramfs under QEMU and
//! checks the bus through every root transition; `demo` does one such boot
//! and prints its timeline; `bench` measures what the bus costs the boot.

mod boot;
mod dmesg;
mod kernel;
mod vng;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Runs kdbus tests inside virtual machines")]
struct Cli {
    /// Kernel release to boot (default: the newest installed one with headers).
    #[arg(long, global = true)]
    kver: Option<String>,
    /// Seconds before the VM is killed and the run counts as failed.
    #[arg(long, global = true, default_value_t = 900)]
    timeout: u64,
    /// The module to load (default: kmod/kdbus.ko of this checkout).
    #[arg(long, global = true)]
    module: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load kdbus.ko in a VM, run COMMAND (a program or script on the
    /// host's file system) and unload the module.
    Module {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Build the ABI test suite (tests/abi) and run all of it in one VM.
    Abi {
        /// Run only these test files of tests/abi/tests (by name, without
        /// ".rs"; may be repeated). Default: all of them.
        #[arg(long = "only")]
        only: Vec<String>,
        /// Environment of the test binaries in the guest, as NAME=VALUE
        /// (may be repeated): the host's environment does not reach it.
        #[arg(long = "env")]
        env: Vec<String>,
        /// Arguments passed to every test binary (a name filter, --nocapture...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot scenarios (all by default): a Debian 12 root and a `dracut
    /// --add kdbus` initramfs under QEMU, judged from the serial console.
    Boot {
        /// Scenario names (kdbus-on, kdbus-absent, kdbus-0, kdbus-banana,
        /// shell-init, shutdown-shell).
        scenarios: Vec<String>,
        /// Show the guest's console while it runs.
        #[arg(long)]
        echo: bool,
        /// Seconds one boot may take.
        #[arg(long, default_value_t = 300)]
        boot_timeout: u64,
    },
    /// One boot with kdbus=1 through initramfs, real root and shutdown
    /// root, with a timeline of what the bus did.
    Demo {
        #[arg(long)]
        echo: bool,
        #[arg(long, default_value_t = 300)]
        boot_timeout: u64,
    },
    /// Boot time to the switch to the real root and to multi-user.target,
    /// and initramfs size, with and without `--add kdbus` and `kdbus=1`;
    /// and kdbus-bridge vs dbus-broker as the system bus.
    Bench {
        /// Boots per variant.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Only the system bus pair: the image with D-Bus booted with
        /// kdbus=1 (kdbus-bridge) and kdbus=0 (dbus-broker).
        #[arg(long)]
        system_bus: bool,
        #[arg(long, default_value_t = 300)]
        boot_timeout: u64,
    },
}

/// The checkout this harness was built from.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("kdbus-vmtest: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    let root = repo_root().canonicalize().context("locate the checkout")?;
    let kernel = kernel::Kernel::find(cli.kver.as_deref())?;
    let module = match &cli.module {
        Some(path) => path.canonicalize().context("locate the module")?,
        None => root.join("kmod/kdbus.ko"),
    };
    kernel.check_module(&module)?;

    let secs = std::time::Duration::from_secs;
    let commands = match cli.command {
        Cmd::Boot {
            scenarios,
            echo,
            boot_timeout,
        } => {
            let env = boot::Env::prepare(&root, kernel, secs(boot_timeout), echo)?;
            return boot::run(&env, &scenarios);
        }
        Cmd::Demo { echo, boot_timeout } => {
            let env = boot::Env::prepare(&root, kernel, secs(boot_timeout), echo)?;
            return boot::demo::run(&env);
        }
        Cmd::Bench {
            runs,
            system_bus,
            boot_timeout,
        } => {
            let env = boot::Env::prepare(&root, kernel, secs(boot_timeout), false)?;
            return boot::bench::run(&env, runs, system_bus);
        }
        Cmd::Module { command } => vec![command],
        Cmd::Abi { only, env, args } => abi_test_binaries(&root)?
            .into_iter()
            .filter(|exe| only.is_empty() || only.iter().any(|name| is_test_of(exe, name)))
            .map(|exe| {
                let mut cmd = Vec::new();
                if !env.is_empty() {
                    cmd.push("env".to_owned());
                    cmd.extend(env.iter().cloned());
                }
                cmd.push(exe.display().to_string());
                cmd.extend(args.iter().cloned());
                cmd
            })
            .collect(),
    };

    let run = vng::ModuleRun {
        root: &root,
        kernel: &kernel,
        module: &module,
        timeout: std::time::Duration::from_secs(cli.timeout),
    };
    let verdict = run.execute(&commands)?;
    verdict.report();
    Ok(verdict.passed())
}

/// Whether `exe` (cargo names it `NAME-HASH`) is the test file `name`.
fn is_test_of(exe: &std::path::Path, name: &str) -> bool {
    exe.file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.rsplit_once('-'))
        .is_some_and(|(stem, _)| stem == name)
}

/// Builds the ABI test suite (and kdbus-init and kdbus-bridge, which its
/// tests run) and returns its test executables.
fn abi_test_binaries(root: &std::path::Path) -> Result<Vec<PathBuf>> {
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "-q", "-p", "kdbus-init", "-p", "kdbus-bridge"])
        .status()
        .context("run cargo to build kdbus-init and kdbus-bridge")?;
    if !built.success() {
        bail!("building kdbus-init and kdbus-bridge for the ABI tests failed");
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "test",
            "-p",
            "kdbus-abi-tests",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .context("run cargo to build the ABI tests")?;
    if !out.status.success() {
        bail!(
            "building the ABI tests failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // Integration test targets only: the crate's (empty) unit test
        // binary has nothing to run in a VM.
        let is_test_target = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
        if msg["reason"] == "compiler-artifact" && is_test_target {
            if let Some(exe) = msg["executable"].as_str() {
                exes.push(PathBuf::from(exe));
            }
        }
    }
    if exes.is_empty() {
        bail!("cargo built no ABI test executables");
    }
    Ok(exes)
}
