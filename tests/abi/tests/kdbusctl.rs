//! kdbusctl against the real module: every command on a live bus with a
//! service, in-process (kdbusctl is a library with a thin main).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kdbus::{own_name, AttachFlags, BusBuilder, HelloBuilder, MessageBuilder, NameFlags};
use kdbus_abi_tests::Domain;
use serde_json::Value;

const SERVICE: &str = "org.example.Echo";

fn kdbusctl(args: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    let mut argv = vec!["kdbusctl"];
    argv.extend_from_slice(args);
    if args.contains(&"status") {
        // Not this machine's kdbus-init, if any.
        argv.extend(["--init-status", "/nonexistent"]);
    }
    kdbusctl::run_args(&argv, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8(out).unwrap())
}

fn json(args: &[&str]) -> Value {
    let text = kdbusctl(args).unwrap_or_else(|e| panic!("kdbusctl {args:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn every_command_works_on_a_live_bus() {
    let domain = Domain::new();
    let bus = BusBuilder::new(own_name("ctl"))
        .creator_attach_flags(AttachFlags::ANY)
        .create_in(domain.path())
        .unwrap();
    let endpoint = bus.endpoint().unwrap();
    let ep = endpoint.to_str().unwrap();
    let service = HelloBuilder::new()
        .attach_send(AttachFlags::ANY)
        .description("echo-service")
        .connect(&endpoint)
        .unwrap();
    service.acquire_name(SERVICE, NameFlags::empty()).unwrap();
    let stop = AtomicBool::new(false);

    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if !service.wait(Some(Duration::from_millis(50))).unwrap() {
                    continue;
                }
                let Some(call) = service.recv().unwrap().message else {
                    continue;
                };
                if call.is_call() {
                    let reply = call.payload_to_vec();
                    service
                        .send(&MessageBuilder::reply_to(&call).payload(&reply))
                        .unwrap();
                }
            }
        });

        let status = json(&["--bus", ep, "--json", "status"]);
        assert_eq!(status["bus"]["name"], bus.name());
        assert_eq!(
            status["bus"]["id128"],
            kdbusctl::report::hex_id128(service.bus_id128())
        );
        assert_eq!(status["connections"], 1, "{status}");
        assert_eq!(status["names"], 1, "{status}");
        assert_eq!(
            status["bus"]["creator"]["pid"],
            std::process::id(),
            "{status}"
        );
        let text = kdbusctl(&["--bus", ep, "status"]).unwrap();
        assert!(
            text.contains(&format!("bus:           {}", bus.name())),
            "{text}"
        );

        let list = json(&["--bus", ep, "list", "--json"]);
        let row = &list.as_array().unwrap()[0];
        assert_eq!(row["id"], service.id());
        assert_eq!(row["names"][0]["name"], SERVICE);
        assert_eq!(row["description"], "echo-service", "{row}");
        assert_eq!(row["pid"], std::process::id(), "{row}");
        let text = kdbusctl(&["--bus", ep, "list"]).unwrap();
        assert!(
            text.contains(SERVICE) && text.contains("echo-service"),
            "{text}"
        );

        let names = json(&["--bus", ep, "names", "--json"]);
        assert_eq!(names[0]["name"], SERVICE);
        assert_eq!(names[0]["owner"], service.id());

        assert_eq!(
            kdbusctl(&["--bus", ep, "call", SERVICE, "hello"]).unwrap(),
            "hello\n"
        );
        let reply = json(&[
            "--bus",
            ep,
            "--json",
            "call",
            &service.id().to_string(),
            "by id",
        ]);
        assert_eq!(reply["payload"], "by id");
        assert_eq!(reply["src"], service.id());

        let err = kdbusctl(&["--bus", ep, "call", "org.example.Nobody", "x"]).unwrap_err();
        assert!(err.contains("nobody owns org.example.Nobody"), "{err}");

        // monitor: with or without monitor support in the module, it
        // ends by itself and prints only well-formed lines.
        let text = kdbusctl(&["--bus", ep, "--json", "monitor", "--timeout", "0.3"]).unwrap();
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }

        stop.store(true, Ordering::Relaxed);
    });

    let missing = domain.path().join("0-nosuchbus/bus");
    let err = kdbusctl(&["--bus", missing.to_str().unwrap(), "status"]).unwrap_err();
    assert!(err.contains("there is no bus 0-nosuchbus"), "{err}");
    assert!(err.contains(bus.name()), "lists the existing buses: {err}");
}
