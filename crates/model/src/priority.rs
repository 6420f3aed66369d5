//! Lower CPU priority for the threads that compute new analyses.
//!
//! On a machine whose cores are all busy with inference, a cache hit still needs a
//! core for a fraction of a millisecond. Running inference (and the rest of a new
//! analysis) a few nice steps below the HTTP threads lets the kernel hand that core
//! over at once; when nothing else wants the CPU, inference still gets all of it.

/// Lowers the calling thread's CPU priority by `steps` nice steps (0: unchanged). The
/// threads it starts afterwards inherit the lower priority; the rest of the process
/// keeps its own. Lowering needs no privilege. Linux only: elsewhere a nice value
/// belongs to the whole process, so this returns `Unsupported` and changes nothing.
pub fn lower_this_thread(steps: u8) -> std::io::Result<()> {
    if steps == 0 {
        return Ok(());
    }
    lower(i32::from(steps))
}

#[cfg(target_os = "linux")]
fn lower(steps: i32) -> std::io::Result<()> {
    // SAFETY: `__errno_location` returns the calling thread's errno, valid for the
    // thread's life; it is cleared so that a -1 from `nice` can be told apart from an
    // error. `nice` takes an integer and touches no memory of ours. On Linux it acts on
    // the calling thread only (setpriority(2), "BUGS": the nice value is per thread).
    let result = unsafe {
        *libc::__errno_location() = 0;
        libc::nice(steps)
    };
    let error = std::io::Error::last_os_error();
    if result == -1 && error.raw_os_error() != Some(0) {
        return Err(error);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn lower(_steps: i32) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "per-thread priorities need Linux",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of(tid: i32) -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Field 19 (nice), counted after the command name's closing parenthesis.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    fn this_tid() -> i32 {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::gettid() }
    }

    #[test]
    fn only_the_calling_thread_and_its_children_are_lowered() {
        let main = this_tid();
        let before = nice_of(main);
        let (lowered, child) = std::thread::spawn(move || {
            lower_this_thread(3).unwrap();
            let child = std::thread::spawn(|| nice_of(this_tid())).join().unwrap();
            (nice_of(this_tid()), child)
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + 3).min(19));
        assert_eq!(child, lowered, "threads started afterwards inherit it");
        assert_eq!(
            nice_of(main),
            before,
            "the rest of the process keeps its priority"
        );
    }
}
