/*
 * base64.c - strict base64 and base64url (see base64.h) on top of
 * OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock: the input is checked
 * character by character, rewritten into the padded standard form,
 * decoded, and accepted only if encoding the result gives the same text.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "base64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static bool is_b64(char c, bool url)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return url ? (c == '-' || c == '_') : (c == '+' || c == '/');
}

static void wipe_free(void *p, size_t n)
{
    if (p) {
        explicit_bzero(p, n);
        free(p);
    }
}

static void wipe_str(char *s)
{
    if (s)
        wipe_free(s, strlen(s));
}

int pc_base64_encode(const void *data, size_t len, bool url, char **out)
{
    *out = NULL;
    if (len > PC_BASE64_MAX) {
        pc_error_set("base64: input too long");
        return PC_ETOOBIG;
    }
    size_t n = 4 * ((len + 2) / 3);
    char *s = malloc(n + 1);
    if (!s) {
        pc_error_set("out of memory");
        return PC_ENOMEM;
    }
    EVP_EncodeBlock((unsigned char *)s, data, (int)len);
    s[n] = '\0';
    if (url) {
        while (n > 0 && s[n - 1] == '=')
            s[--n] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '+')
                s[i] = '-';
            else if (s[i] == '/')
                s[i] = '_';
        }
    }
    *out = s;
    return 0;
}

int pc_base64_decode(const char *s, size_t len, bool url, unsigned char **out, size_t *out_len)
{
    int rc = PC_EINVAL;
    char *std = NULL, *again = NULL;
    unsigned char *bin = NULL;
    size_t pad = 0, std_len = 0, bin_len = 0, bin_cap = 0;

    *out = NULL;
    *out_len = 0;
    if (len > PC_BASE64_MAX) {
        pc_error_set("base64: input too long");
        return PC_ETOOBIG;
    }
    if (url) {
        if (len % 4 == 1)
            goto bad;
        pad = (4 - len % 4) % 4;
    } else {
        if (len % 4 != 0)
            goto bad;
        while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
            pad++;
    }
    for (size_t i = 0; i < len - (url ? 0 : pad); i++)
        if (!is_b64(s[i], url))
            goto bad;

    std_len = url ? len + pad : len;
    bin_cap = 3 * (std_len / 4) + 1;
    std = malloc(std_len + 1);
    bin = malloc(bin_cap);
    if (!std || !bin) {
        rc = PC_ENOMEM;
        pc_error_set("out of memory");
        goto done;
    }
    memcpy(std, s, len);
    if (url) {
        for (size_t i = 0; i < len; i++) {
            if (std[i] == '-')
                std[i] = '+';
            else if (std[i] == '_')
                std[i] = '/';
        }
        memset(std + len, '=', pad);
    }
    std[std_len] = '\0';
    int n = EVP_DecodeBlock(bin, (const unsigned char *)std, (int)std_len);
    if (n < 0 || (size_t)n < pad)
        goto bad;
    bin_len = (size_t)n - pad; /* EVP_DecodeBlock counts padding as zero bytes */
    bin[bin_len] = '\0';

    /* Canonical form only: bits the last character does not use must be 0. */
    rc = pc_base64_encode(bin, bin_len, false, &again);
    if (rc != 0)
        goto done;
    if (strlen(again) != std_len || memcmp(again, std, std_len) != 0) {
        rc = PC_EINVAL;
        goto bad;
    }
    *out = bin;
    *out_len = bin_len;
    bin = NULL;
    rc = 0;
    goto done;
bad:
    rc = PC_EINVAL;
    pc_error_set("malformed %s", url ? "base64url" : "base64");
done:
    wipe_free(std, std_len);
    wipe_str(again);
    wipe_free(bin, bin_cap);
    return rc;
}
