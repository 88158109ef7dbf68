//! The shared broker conformance suite, run against the in-memory broker.

use herald_hub::broker::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_broker_keeps_every_broker_invariant() {
    conformance::run_all(conformance::memory, conformance::memory_footprint).await;
}
