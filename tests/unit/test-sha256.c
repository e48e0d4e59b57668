/* SPDX-License-Identifier: MIT */
/* SHA-256 of the CLI's provenance: FIPS 180-4 / NIST test vectors, and
 * the same digest however the input is split across updates (the padding
 * edge cases at 55, 56 and 64 bytes included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void test_vectors(void **state) {
        char hex[65];

        (void) state;
        sha256_hex("", 0, hex);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
        assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a(void **state) {
        uint8_t digest[SHA256_DIGEST_BYTES];
        static const uint8_t want[SHA256_DIGEST_BYTES] = {
                0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
                0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0,
        };
        char block[1000];
        Sha256 s;

        (void) state;
        memset(block, 'a', sizeof block);
        sha256_init(&s);
        for (int i = 0; i < 1000; i++)
                sha256_update(&s, block, sizeof block);
        sha256_final(&s, digest);
        assert_memory_equal(digest, want, sizeof want);
}

static void test_split_updates(void **state) {
        uint8_t data[200], one[SHA256_DIGEST_BYTES], split[SHA256_DIGEST_BYTES];

        (void) state;
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 7 + 3);
        for (size_t len = 0; len <= sizeof data; len++) {
                Sha256 s;

                sha256_init(&s);
                sha256_update(&s, data, len);
                sha256_final(&s, one);
                for (size_t cut = 0; cut <= len; cut += 13) {
                        sha256_init(&s);
                        sha256_update(&s, data, cut);
                        sha256_update(&s, data + cut, len - cut);
                        sha256_final(&s, split);
                        assert_memory_equal(one, split, sizeof one);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_million_a),
                cmocka_unit_test(test_split_updates),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
