//! `fail2ban-server`: the daemon (see [`fail2ban::server`]).

fn main() {
    let argv = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(fail2ban::server::process::main(argv));
}
