// glibc's allocator spends a noticeable share of the webhook path in malloc/free under
// concurrency (see README, "Benchmarks"); mimalloc is the common drop-in remedy.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wa2crm::cli::main()
}
