// Whether this test program is built with AddressSanitizer or ThreadSanitizer (the presets sanitize and
// tsan). Both reserve terabytes of address space for their shadow memory, so a program under them
// cannot start with `ulimit -v`, and ThreadSanitizer's own allocator fails under a tight RLIMIT_AS.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SKNET_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SKNET_TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(SKNET_TEST_ASAN)
#define SKNET_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(SKNET_TEST_TSAN)
#define SKNET_TEST_TSAN 1
#endif
#endif
#ifndef SKNET_TEST_ASAN
#define SKNET_TEST_ASAN 0
#endif
#ifndef SKNET_TEST_TSAN
#define SKNET_TEST_TSAN 0
#endif
