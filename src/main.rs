/// jemalloc with two arenas and a background thread that returns freed pages to the OS (see
/// `.cargo/config.toml`); with glibc's per-thread arenas a demo left running (SQLite's, Polars'
/// and tokio's threads allocating in turn) kept growing for an hour.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    ioto::cli::main()
}
