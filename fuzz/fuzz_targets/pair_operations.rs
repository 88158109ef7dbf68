//! Arbitrary sequences of sends, closes, partial deliveries and transport ends on a client and
//! a server: neither fails the connection, each reports exactly what the other sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<herald_proto_fuzz::pair::Op>| {
    herald_proto_fuzz::pair::run(ops);
});
