//! `wa2crm hash-password`: a console user's password, hashed for `[console] users`.

/// `wa2crm hash-password`: the first line of standard input, hashed for `console.users`.
pub fn main() -> anyhow::Result<std::process::ExitCode> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "Type the password and press Enter (it is shown as you type; pipe it in to avoid that):"
        );
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        anyhow::bail!("the password is shorter than 12 characters: choose a longer one");
    }
    println!("{}", crate::console::hash_password(password)?);
    Ok(std::process::ExitCode::SUCCESS)
}
