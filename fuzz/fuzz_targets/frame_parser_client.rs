//! A client's frame parser on arbitrary bytes in arbitrary pieces: the events are accepted
//! frames or one `Closed` with a documented error, the same for every split, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    herald_proto_fuzz::frames::frame_parser(herald_proto::Role::Client, data);
});
