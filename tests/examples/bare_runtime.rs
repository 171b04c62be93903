//! The cold-start reference of `scripts/bench.sh`: a Lambda function that does nothing
//! but echo its event, on the same `lambda_runtime` and tokio as herald's functions and
//! built with the same release profile. What a herald function takes to reach its first
//! `/next` beyond this one is herald's own start-up (clients, configuration, templates).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })).await
}
