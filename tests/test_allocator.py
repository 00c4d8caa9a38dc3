import platform

import pytest

from lwmspectro.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator settings are glibc's")
def test_glibc_takes_the_settings_that_keep_freed_memory_once_per_process():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
