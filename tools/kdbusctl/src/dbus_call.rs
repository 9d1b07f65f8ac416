//! `kdbusctl call --method`: a D-Bus method call in a kdbus message, the
//! format D-Bus peers on the bus (and kdbus-bridge's clients) understand.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kdbus::dbus::{Arg, Kind, Message};
use kdbus::{Destination, HelloBuilder, MessageBuilder};

use crate::target::Target;

/// Calls `method` (INTERFACE.MEMBER) on `path` at `dest`; `arg`, unless
/// empty, is the one string argument. Prints the reply's arguments, one
/// per line.
pub fn call(
    out: &mut dyn Write,
    target: &Target,
    dest: &str,
    path: &str,
    method: &str,
    arg: &str,
    timeout: Duration,
) -> Result<()> {
    let (interface, member) = method
        .rsplit_once('.')
        .ok_or_else(|| anyhow!("--method wants INTERFACE.MEMBER, e.g. org.example.Echo.Echo"))?;
    let conn = target.connect(&HelloBuilder::new().description("kdbusctl"))?;
    let (dst, dbus_dest) = match dest.parse::<u64>() {
        Ok(id) => (Destination::Id(id), format!(":1.{id}")),
        Err(_) => (Destination::Name(dest.to_owned()), dest.to_owned()),
    };
    let mut msg = if arg.is_empty() {
        Message::method_call(Some(&dbus_dest), path, Some(interface), member, &())
    } else {
        Message::method_call(Some(&dbus_dest), path, Some(interface), member, &(arg,))
    }
    .map_err(|e| anyhow!("cannot build the call (check --path and --method): {e}"))?;
    msg.stamp(1, Some(&format!(":1.{}", conn.id())))?;
    let reply = conn
        .call(&MessageBuilder::new(dst).dbus(&msg).expect_reply(timeout))
        .map_err(|err| crate::call_failure(&err, dest, timeout))?;
    let reply = reply
        .dbus()
        .with_context(|| format!("{dest} answered with something that is not a D-Bus message"))?;
    let args = reply.string_args().unwrap_or_default();
    if reply.header().kind == Kind::Error {
        let text = match args.first() {
            Some(Arg::Str(text)) => text.as_str(),
            _ => "",
        };
        bail!(
            "{dest} answered with the error {}: {text}",
            reply.header().error_name.as_deref().unwrap_or("(unnamed)")
        );
    }
    for arg in args {
        match arg {
            Arg::Str(s) | Arg::Path(s) => writeln!(out, "{s}")?,
            Arg::Other => writeln!(
                out,
                "(an argument of the signature {})",
                reply.header().signature
            )?,
        }
    }
    Ok(())
}
