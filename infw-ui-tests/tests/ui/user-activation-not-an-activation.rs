/// A type that does not implement `infw::UserActivation`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct NotAnActivation;

fn main() {
    let _net = infw::network!{ dense(512) act(NotAnActivation) };
}
