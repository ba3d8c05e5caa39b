//! Each sandbox's fake FlexFactor (a service in test mode, `service::sandbox`): this fake on
//! the sandbox's clock, delivering only when the sandbox settles. The service cannot name the
//! fake itself (this crate depends on the service's), so `salvage serve` gives it this starter.

use std::sync::Arc;

use super::{ClockMode, FakeConfig, FakeFlexFactor, RunningFake};
use salvage_domain::ManualClock;
use salvage_gateway::service::sandbox::{Pending, SandboxFlexFactor, SandboxFlexFactorStarter};

/// Starts fakes for sandboxes.
pub struct FakeStarter;

struct Fake(RunningFake);

impl SandboxFlexFactor for Fake {
    fn base_url(&self) -> String {
        self.0.base_url()
    }

    fn root_url(&self) -> String {
        format!("http://{}", self.0.addr())
    }

    fn set_webhook_url(&self, url: &str) -> Result<(), String> {
        self.0.set_webhook_url(Some(url)).map_err(|e| e.to_string())
    }

    fn deliver_due(&self) -> Pending<'_, ()> {
        Box::pin(async move {
            self.0.deliver_due().await;
        })
    }

    fn shutdown(self: Box<Self>) -> Pending<'static, ()> {
        Box::pin(async move { self.0.shutdown().await })
    }
}

impl SandboxFlexFactorStarter for FakeStarter {
    fn start(
        &self,
        clock: Arc<ManualClock>,
    ) -> Pending<'_, Result<Box<dyn SandboxFlexFactor>, String>> {
        Box::pin(async move {
            let mut config = FakeConfig::sandbox_defaults();
            config.clock = ClockMode::Shared(clock);
            config.auto_deliver = None;
            let fake = FakeFlexFactor::start(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(Fake(fake)) as Box<dyn SandboxFlexFactor>)
        })
    }
}
