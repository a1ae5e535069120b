fn main() -> std::process::ExitCode {
    ioto::cli::main()
}
