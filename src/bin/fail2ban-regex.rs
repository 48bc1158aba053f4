//! `fail2ban-regex`: test failregexes and filters against logs (see
//! [`fail2ban::regextool`]).

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(fail2ban::regextool::main(args));
}
