def test_threads_computing_one_generated_digest_at_once_all_get_it(tmp_path) -> None:
    """Two nodes' pushes (a thread each) asked for the same size's digest at once: with a
    temporary file named by pid only, one thread's rename took the other's file and it
    failed with FileNotFoundError (a sweep over sizes lost a node: "1 node not prepared")."""
    import threading

    from parbench.controller.run import reference

    got: list[object] = []
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        try:
            got.append(reference.generated_sha256(4096, tmp_path / "cache"))
        except OSError as exc:  # what the race gave
            got.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for _ in range(20):  # the window is small: try it many times, from an empty cache
        got.clear()
        for kept in (tmp_path / "cache").glob("*"):
            kept.unlink()
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(map(str, got))) == 1 and isinstance(got[0], str), got
