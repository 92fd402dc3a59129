"""The bench's perf summary reads ``perf script`` stacks right: the leaf's code, the
innermost system call, and whether a read or write went to a socket."""

from __future__ import annotations

from bench.perf_profile import parse

SCRIPT = """\
101
\t    ffffffff81a0 _raw_spin_unlock_irqrestore ([kernel.kallsyms])
\t    ffffffff81b0 futex_wake ([kernel.kallsyms])
\t    ffffffff81c0 __x64_sys_futex ([kernel.kallsyms])
\t    7f0000000010 pthread_cond_signal@@GLIBC_2.3.2 (/usr/lib/x86_64-linux-gnu/libc.so.6)

101
\t    ffffffff82a0 tcp_sendmsg ([kernel.kallsyms])
\t    ffffffff82b0 sock_write_iter ([kernel.kallsyms])
\t    ffffffff82c0 ksys_write ([kernel.kallsyms])
\t    7f0000000020 __GI___libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)

102
\t    ffffffff83a0 ext4_file_write_iter ([kernel.kallsyms])
\t    ffffffff83b0 __x64_sys_pwrite64 ([kernel.kallsyms])
\t    ffffffff83c0 tcp_v4_rcv ([kernel.kallsyms])

102
\t          1ac23e sqlite3VdbeExec (/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6)
\t    7fc84584b5c0 [unknown] ([unknown])

101
\t           fb677 _PyEval_EvalFrameDefault (/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)
"""


def test_each_sample_gets_its_thread_code_and_innermost_call() -> None:
    """Kernel leaves count as kernel code with the system call they ran under (futex;
    a write through a socket marked so; a file pwrite not, whatever runs below its
    entry); C and Python leaves count as their library, with no call."""
    assert parse(SCRIPT) == [
        ("101", "kernel", "futex"),
        ("101", "kernel", "write (socket)"),
        ("102", "kernel", "pwrite64"),
        ("102", "SQLite", None),
        ("101", "CPython", None),
    ]
