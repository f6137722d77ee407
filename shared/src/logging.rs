//! JSON logs through `tracing`, one line per event, as CloudWatch expects.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once. `RUST_LOG` overrides the default `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
    // A panic is logged as one JSON error line like everything else (the
    // default hook writes plain text to stderr), the message cut short.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(at, message = %message.chars().take(200).collect::<String>(), "panic");
    }));
}
