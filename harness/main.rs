use clap::Parser;

fn main() {
    keep_freed_memory();
    // Two rustls crypto providers are compiled in (kube-rs: ring, Goose's
    // reqwest: aws-lc), so rustls needs to be told which one TLS uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = autoscale_harness::cli::Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads() {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
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

/// glibc's malloc gives freed memory at the top of the heap back to the
/// kernel past 128 KiB by default, and a run allocates and frees in waves
/// (the sim's steps, the report): the harness then spent more time in page
/// faults than in its own work (the 35-minute ramp on sim: 229k faults,
/// 0.64 s of system time out of 1.15 s). Keeping up to 128 MiB of freed
/// memory mapped leaves the peak RSS as it was (24 MiB there).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}
