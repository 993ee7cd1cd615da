use clap::Parser;

fn main() {
    // Two rustls crypto providers are compiled in (kube-rs: ring, Goose's
    // reqwest: aws-lc), so rustls needs to be told which one TLS uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = autoscale_harness::cli::Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(autoscale_harness::error::exit::INFRA);
        }
    };
    let code = rt.block_on(async {
        match autoscale_harness::cli::run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                autoscale_harness::error::exit_code(&e)
            }
        }
    });
    // Don't wait for stray tasks (pods still draining after an error).
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}
