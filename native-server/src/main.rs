//! `realm-server`: see the library (`realm_server`) and native-server/README.md.

use clap::Parser;
use realm_server::config::{Args, llama_server_spellings};

fn main() -> std::process::ExitCode {
    let args = Args::parse_from(llama_server_spellings(std::env::args()));
    let level = match std::env::var("REALM_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let fmt = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if args.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let rt =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("realm-server: cannot start the async runtime: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    match rt.block_on(realm_server::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("realm-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
