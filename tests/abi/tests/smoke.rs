//! First contact: a bus, two connections, one message each way.

use kdbus::abi::*;
use kdbus_abi_tests::*;

#[test]
fn hello_send_recv() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    assert_ne!(a.id, b.id);

    let data = b"hello kdbus";
    a.send(&MsgBuilder::new(b.id).vec(data)).unwrap();
    let m = b.recv_msg();
    assert_eq!(m.hdr.src_id, a.id);
    assert_eq!(m.payload(), data);
    assert_eq!(errno(b.recv()), rustix::io::Errno::AGAIN);
}

#[test]
fn name_and_call() {
    let bus = Bus::new();
    let a = bus.conn();
    let b = bus.conn();
    let f = b.acquire("org.example.B", 0).unwrap();
    assert_ne!(f & KDBUS_NAME_PRIMARY, 0);

    let t = std::thread::spawn(move || {
        let m = b.wait_msg();
        b.send(
            &MsgBuilder::new(m.hdr.src_id)
                .reply_to(m.hdr.cookie)
                .vec(b"pong"),
        )
        .unwrap();
        b
    });
    let r = a
        .call(
            &MsgBuilder::to_name("org.example.B")
                .expect_reply(deadline_ms(5000))
                .vec(b"ping"),
        )
        .unwrap();
    assert_eq!(r.payload(), b"pong");
    let _b = t.join().unwrap();
}
