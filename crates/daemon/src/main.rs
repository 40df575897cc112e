fn main() -> std::process::ExitCode {
    wa2crm::cli::main()
}
