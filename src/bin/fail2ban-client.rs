//! `fail2ban-client`: controls a running fail2ban server (see
//! [`fail2ban::client`]).

fn main() {
    let argv = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(fail2ban::client::main(argv));
}
