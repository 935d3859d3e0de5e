/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * test_s3.c - the S3 client's parts that need no server: SigV4 presigning
 * and header signing (AWS's published examples, and vectors computed at run
 * time by an independent Python implementation, tests/tools/sigv4.py), the URI
 * encoding, options and credentials, and the XML answers (s3_xml.c): real
 * shapes, entities, prefixes, paging markers, broken and hostile documents,
 * and mutated documents that must never crash or report garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3.h"
#include "s3_xml.h"
#include "testutil.h"

/* ---- presigning ---- */

/* AWS's documentation example ("Authenticating Requests: Using Query
 * Parameters", Signature Version 4): GET test.txt from examplebucket,
 * 2013-05-24T00:00:00Z, 86400 s. The signature is the one AWS publishes. */
static void test_presign_aws_example(void **state)
{
    (void)state;
    char url[2048];
    assert_int_equal(pc_s3_presign_url("https://examplebucket.s3.amazonaws.com/test.txt",
                                       "examplebucket.s3.amazonaws.com", "us-east-1",
                                       "AKIAIOSFODNN7EXAMPLE",
                                       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 86400,
                                       1369353600, url, sizeof(url)),
                     0);
    assert_string_equal(
        url, "https://examplebucket.s3.amazonaws.com/test.txt"
             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    /* too small a buffer, bad lifetimes, no path */
    assert_int_equal(pc_s3_presign_url("https://h/x", "h", "r", "k", "s", 60, 0, url, 100),
                     PC_ETOOBIG);
    assert_int_equal(pc_s3_presign_url("https://h/x", "h", "r", "k", "s", 0, 0, url, sizeof(url)),
                     PC_EINVAL);
    assert_int_equal(
        pc_s3_presign_url("https://h/x", "h", "r", "k", "s", 604801, 0, url, sizeof(url)),
        PC_EINVAL);
    assert_int_equal(pc_s3_presign_url("https://h", "h", "r", "k", "s", 60, 0, url, sizeof(url)),
                     PC_EINVAL);
}

/* The first line tests/tools/sigv4.py prints for args (shell words). */
static void python_line(const char *args, char *out, size_t size)
{
    char dir[512], cmd[8192];
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/../tools/sigv4.py' %s", dir, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)size, p));
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(p), 0);
}

/* The Python reference's presigned URL for these inputs. */
static void reference(const char *u, const char *host, const char *region, const char *key,
                      const char *secret, long ttl, long now, char *out, size_t size)
{
    char args[4096];
    snprintf(args, sizeof(args), "presign '%s' '%s' '%s' '%s' '%s' %ld %ld", u, host, region, key,
             secret, ttl, now);
    python_line(args, out, size);
}

/* AWS's example of a signed GET (Authorization header, "GET Object":
 * Range bytes=0-9, the empty payload's hash); the signature is AWS's. */
static void test_sign_headers_aws_example(void **state)
{
    (void)state;
    const char *hdrs[] = {
        "Range: bytes=0-9",
        "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
    char authz[1024], stamp[17];
    assert_int_equal(pc_s3_sign_headers("GET", "/test.txt", NULL, "examplebucket.s3.amazonaws.com",
                                        hdrs, 2, "us-east-1", "AKIAIOSFODNN7EXAMPLE",
                                        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1369353600,
                                        authz, sizeof(authz), stamp),
                     0);
    assert_string_equal(stamp, "20130524T000000Z");
    assert_string_equal(authz,
                        "Authorization: AWS4-HMAC-SHA256 "
                        "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6"
                        "036bdb41");
    assert_int_equal(
        pc_s3_sign_headers("GET", "/t", NULL, "h", hdrs, 2, "r", "k", "s", 0, authz, 20, stamp),
        PC_ETOOBIG);
}

/* UploadPartCopy as the backend sends it: x-amz-copy-source and
 * x-amz-copy-source-range (the pair libcurl 7.88 orders wrongly), a query,
 * an encoded path, against the Python reference. */
static void test_sign_headers_reference(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    const char *hdrs[] = {"x-amz-content-sha256: UNSIGNED-PAYLOAD",
                          "x-amz-copy-source: /bucket/p/uploads/a%20b.data",
                          "X-Amz-Copy-Source-Range:  bytes=0-6291455 "};
    char authz[1024], stamp[17], want[1024], args[4096];
    assert_int_equal(pc_s3_sign_headers("PUT", "/bucket/p/blobs/sha256/ab%2Bc",
                                        "partNumber=2&uploadId=2~x%2By", "127.0.0.1:7480", hdrs, 3,
                                        "default", "PCKEY123", "secret/with+chars=", 1796280000,
                                        authz, sizeof(authz), stamp),
                     0);
    snprintf(args, sizeof(args),
             "header PUT /bucket/p/blobs/sha256/ab%%2Bc 'partNumber=2&uploadId=2~x%%2By' "
             "127.0.0.1:7480 default PCKEY123 'secret/with+chars=' 1796280000 '%s' '%s' '%s'",
             hdrs[0], hdrs[1], hdrs[2]);
    python_line(args, want, sizeof(want));
    assert_string_equal(authz, want);
    /* the names in order: copy-source before copy-source-range */
    assert_non_null(strstr(authz, "SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;"
                                  "x-amz-copy-source-range;x-amz-date,"));
}

/* Vectors with a port, a prefix, a path-style bucket, encoded characters
 * and a region of its own, against the independent implementation; and
 * the client's presign builds the URL it signs from its options. */
static void test_presign_reference(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    static const struct {
        const char *url, *host, *region, *key, *secret;
        long ttl, now;
    } v[] = {
        {"http://127.0.0.1:7480/bucket/pre/blobs/sha256/"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "127.0.0.1:7480", "default", "PCKEY123", "secret/with+chars=", 300, 1796280000},
        {"https://b.s3.example.org/a%20b/%C3%A4~x", "b.s3.example.org", "eu-central-1",
         "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 604800, 1440938160},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[2048], want[2048];
        assert_int_equal(pc_s3_presign_url(v[i].url, v[i].host, v[i].region, v[i].key, v[i].secret,
                                           v[i].ttl, v[i].now, got, sizeof(got)),
                         0);
        reference(v[i].url, v[i].host, v[i].region, v[i].key, v[i].secret, v[i].ttl, v[i].now, want,
                  sizeof(want));
        assert_string_equal(got, want);
    }
    /* through a client: path style, the prefix and key encoded */
    setenv("AWS_ACCESS_KEY_ID", "PCKEY123", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret/with+chars=", 1);
    pc_s3_opts o = {.endpoint = "http://127.0.0.1:7480/",
                    .region = "default",
                    .bucket = "bucket",
                    .prefix = "/pre/",
                    .path_style = true};
    pc_s3 *s;
    assert_int_equal(pc_s3_open(&o, &s), 0);
    char got[2048], want[2048];
    assert_int_equal(pc_s3_presign(s,
                                   "blobs/sha256/"
                                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
                                   "52b855",
                                   300, 1796280000, got, sizeof(got)),
                     0);
    reference(v[0].url, v[0].host, v[0].region, v[0].key, v[0].secret, v[0].ttl, v[0].now, want,
              sizeof(want));
    assert_string_equal(got, want);
    pc_s3_free(s);
    /* virtual-host style: the bucket goes into the host */
    o.path_style = false;
    o.prefix = NULL;
    assert_int_equal(pc_s3_open(&o, &s), 0);
    assert_int_equal(pc_s3_presign(s, "k", 60, 1796280000, got, sizeof(got)), 0);
    reference("http://bucket.127.0.0.1:7480/k", "bucket.127.0.0.1:7480", "default", "PCKEY123",
              "secret/with+chars=", 60, 1796280000, want, sizeof(want));
    assert_string_equal(got, want);
    pc_s3_free(s);
}

static void test_uri_encode(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(pc_s3_uri_encode("a/b c~d_e.f-g", true, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a/b%20c~d_e.f-g");
    assert_int_equal(pc_s3_uri_encode("a/b+=&?%\xc3\xa4", false, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a%2Fb%2B%3D%26%3F%25%C3%A4");
    assert_int_equal(pc_s3_uri_encode("", false, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(pc_s3_uri_encode("abc", false, buf, 3), PC_ETOOBIG);
    assert_int_equal(pc_s3_uri_encode(" ", false, buf, 3), PC_ETOOBIG);
    assert_int_equal(pc_s3_uri_encode(" ", false, buf, 4), 0);
}

/* Options are checked; credentials come from a file or the environment,
 * and no message ever shows the secret. */
static void test_open_options(void **state)
{
    (void)state;
    pc_s3 *s;
    pc_s3_opts o = {.endpoint = "ftp://x", .bucket = "b"};
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL);
    o.endpoint = "http://127.0.0.1:1/path";
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL);
    o.endpoint = "http://127.0.0.1:1";
    o.bucket = "a/b";
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL);
    o.bucket = "b";
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL);
    assert_non_null(strstr(pc_error_last(), "AWS_ACCESS_KEY_ID"));

    char dir[64], path[128];
    assert_non_null(pc_test_tmpdir(dir, sizeof(dir), "s3cred"));
    snprintf(path, sizeof(path), "%s/credentials", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[default]\n# comment\naws_access_key_id = KEYFROMFILE\n", fp);
    fclose(fp);
    o.credentials_file = path;
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL); /* no secret */
    assert_non_null(strstr(pc_error_last(), "aws_secret_access_key"));
    fp = fopen(path, "a");
    fputs("aws_secret_access_key = TOPSECRETVALUE \n", fp);
    fclose(fp);
    assert_int_equal(pc_s3_open(&o, &s), 0);
    /* nothing listens on port 1: the failure names the call, not the secret */
    assert_int_equal(pc_s3_put(s, "k", "x", 1, NULL, NULL), PC_EUPSTREAM);
    assert_non_null(strstr(pc_error_last(), "PUT b/k"));
    assert_null(strstr(pc_error_last(), "TOPSECRET"));
    assert_null(strstr(pc_error_last(), "Authorization"));
    char url[1024];
    assert_int_equal(pc_s3_presign(s, "k", 60, 1796280000, url, sizeof(url)), 0);
    assert_non_null(strstr(url, "KEYFROMFILE%2F"));
    assert_null(strstr(url, "TOPSECRET"));
    pc_s3_free(s);
    o.credentials_file = "/nonexistent/credentials";
    assert_int_equal(pc_s3_open(&o, &s), PC_EINVAL);
    pc_test_rmtree(dir);
}

/* ---- XML ---- */

typedef struct {
    size_t n;
    char keys[8][64];
    uint64_t sizes[8];
    time_t times[8];
    char etags[8][64];
} seen;

static int see_obj(const pc_s3_obj *o, void *p)
{
    seen *s = p;
    if (s->n < 8) {
        snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", o->key);
        s->sizes[s->n] = o->size;
        s->times[s->n] = o->mtime;
        snprintf(s->etags[s->n], sizeof(s->etags[0]), "%s", o->etag);
    }
    s->n++;
    return 0;
}

static int stop_obj(const pc_s3_obj *o, void *p)
{
    (void)o;
    (*(int *)p)++;
    return 7;
}

#define LIST_HEAD                                                                                  \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "                                 \
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>"

static const char list_doc[] = LIST_HEAD
    "<KeyCount>3</KeyCount><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>tok/+=en</NextContinuationToken>"
    "<Contents><Key>p/blobs/a</Key><LastModified>2026-12-03T07:03:56.385Z</LastModified>"
    "<ETag>&quot;b1946ac92492d2347c6235b4d2611184&quot;</ETag><Size>6</Size></Contents>"
    "<Contents><Key>other/x</Key><LastModified>2026-12-03T07:03:56Z</LastModified>"
    "<Size>1</Size></Contents>"
    "<Contents><Key>p/a &amp; b&lt;c</Key><LastModified>1970-01-01T00:00:01Z</LastModified>"
    "<Size>18446744073709551615</Size></Contents></ListBucketResult>";

static void test_xml_objects(void **state)
{
    (void)state;
    seen s = {0};
    bool more = false;
    char token[64];
    assert_int_equal(pc_s3_xml_objects(list_doc, strlen(list_doc), "p/", see_obj, &s, &more, token,
                                       sizeof(token)),
                     0);
    assert_true(more);
    assert_string_equal(token, "tok/+=en");
    assert_int_equal(s.n, 2); /* other/x is not under the prefix */
    assert_string_equal(s.keys[0], "blobs/a");
    assert_int_equal(s.sizes[0], 6);
    assert_int_equal(s.times[0], 1796281436);
    assert_string_equal(s.etags[0], "\"b1946ac92492d2347c6235b4d2611184\"");
    assert_string_equal(s.keys[1], "a & b<c");
    assert_int_equal(s.sizes[1], UINT64_MAX);
    assert_int_equal(s.times[1], 1);
    int calls = 0;
    assert_int_equal(pc_s3_xml_objects(list_doc, strlen(list_doc), "p/", stop_obj, &calls, &more,
                                       token, sizeof(token)),
                     7);
    assert_int_equal(calls, 1);
    /* a token that does not fit */
    assert_int_equal(
        pc_s3_xml_objects(list_doc, strlen(list_doc), "p/", see_obj, &s, &more, token, 4),
        PC_ETOOBIG);

    /* an empty, final page */
    const char empty[] = LIST_HEAD "<IsTruncated>false</IsTruncated></ListBucketResult>";
    memset(&s, 0, sizeof(s));
    assert_int_equal(
        pc_s3_xml_objects(empty, strlen(empty), "p/", see_obj, &s, &more, token, sizeof(token)), 0);
    assert_false(more);
    assert_string_equal(token, "");
    assert_int_equal(s.n, 0);

    /* broken documents are refused, never half-reported */
    static const char *const bad[] = {
        "",
        "not xml",
        "<Error><Code>AccessDenied</Code></Error>",
        LIST_HEAD "<IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        LIST_HEAD "<Contents><Size>1</Size><LastModified>2026-12-03T07:03:56Z</LastModified>"
                  "</Contents></ListBucketResult>", /* no key */
        LIST_HEAD "<Contents><Key>p/k</Key><Size>-1</Size><LastModified>2026-12-03T07:03:56Z"
                  "</LastModified></Contents></ListBucketResult>",
        LIST_HEAD "<Contents><Key>p/k</Key><Size>18446744073709551616</Size><LastModified>"
                  "2026-12-03T07:03:56Z</LastModified></Contents></ListBucketResult>",
        LIST_HEAD "<Contents><Key>p/k</Key><Size>1</Size><LastModified>yesterday</LastModified>"
                  "</Contents></ListBucketResult>",
        LIST_HEAD "<Contents><Key>p/k</Key><Size>1</Size>", /* cut off */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&s, 0, sizeof(s));
        assert_int_equal(pc_s3_xml_objects(bad[i], strlen(bad[i]), "p/", see_obj, &s, &more, token,
                                           sizeof(token)),
                         PC_EINVAL);
        assert_int_equal(s.n, 0);
    }
}

/* An external entity is not fetched or expanded (no XXE). */
static void test_xml_no_external_entities(void **state)
{
    (void)state;
    const char doc[] = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM "
                       "\"file:///etc/passwd\">]><Error><Code>&x;</Code><Message>m</Message>"
                       "</Error>";
    char code[256] = "unset";
    int rc = pc_s3_xml_text(doc, strlen(doc), "Error", "Code", code, sizeof(code));
    assert_true(rc == 0 || rc == PC_EINVAL);
    assert_null(strstr(code, "root:"));
    const char bomb[] = "<?xml version=\"1.0\"?><!DOCTYPE E [<!ENTITY a \"aaaaaaaaaa\">"
                        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><E><Code>&c;</Code></E>";
    rc = pc_s3_xml_text(bomb, strlen(bomb), "E", "Code", code, sizeof(code));
    assert_true(rc == PC_ETOOBIG || rc == PC_EINVAL || (rc == 0 && strlen(code) < 256));
}

static void test_xml_text_and_time(void **state)
{
    (void)state;
    char buf[128];
    const char init[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult "
                        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>k"
                        "</Key><UploadId>2~DgvYA3al4pPp91wlRBWO0HrUqqTyKeH</UploadId>"
                        "</InitiateMultipartUploadResult>";
    assert_int_equal(pc_s3_xml_text(init, strlen(init), "InitiateMultipartUploadResult", "UploadId",
                                    buf, sizeof(buf)),
                     0);
    assert_string_equal(buf, "2~DgvYA3al4pPp91wlRBWO0HrUqqTyKeH");
    assert_int_equal(pc_s3_xml_text(init, strlen(init), "Error", "Code", buf, sizeof(buf)),
                     PC_EINVAL); /* another root */
    assert_int_equal(pc_s3_xml_text(init, strlen(init), NULL, "Missing", buf, sizeof(buf)),
                     PC_ENOTFOUND);
    assert_int_equal(pc_s3_xml_text(init, strlen(init), NULL, "UploadId", buf, 5), PC_ETOOBIG);
    /* radosgw's CompleteMultipartUpload: an empty ETag is a value "" */
    const char done[] = "<CompleteMultipartUploadResult><Location>l</Location><ETag></ETag>"
                        "</CompleteMultipartUploadResult>";
    assert_int_equal(pc_s3_xml_text(done, strlen(done), NULL, "ETag", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    /* only the root's children count */
    const char nested[] = "<Error><X><Code>deep</Code></X></Error>";
    assert_int_equal(pc_s3_xml_text(nested, strlen(nested), "Error", "Code", buf, sizeof(buf)),
                     PC_ENOTFOUND);

    time_t t;
    assert_int_equal(pc_s3_xml_time("2026-12-03T07:03:56.385Z", &t), 0);
    assert_int_equal(t, 1796281436);
    assert_int_equal(pc_s3_xml_time("2026-12-03T07:03:56Z", &t), 0);
    assert_int_equal(t, 1796281436);
    static const char *const bad[] = {"",
                                      "2026-12-03",
                                      "2026-12-03T07:03:56",
                                      "2026-12-03T07:03:56.Z",
                                      "2026-12-03T07:03:56+01:00",
                                      "2026-12-03T07:03:56Zjunk"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pc_s3_xml_time(bad[i], &t), PC_EINVAL);
    assert_int_equal(pc_s3_xml_time(NULL, &t), PC_EINVAL);
}

static int see_mpu(const pc_s3_mpu *m, void *p)
{
    seen *s = p;
    if (s->n < 8) {
        snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", m->key);
        snprintf(s->etags[s->n], sizeof(s->etags[0]), "%s", m->upload_id);
        s->times[s->n] = m->initiated;
    }
    s->n++;
    return 0;
}

static void test_xml_uploads(void **state)
{
    (void)state;
    const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult "
        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket>"
        "<NextKeyMarker>p/tmp/t-2</NextKeyMarker><NextUploadIdMarker>2~b</NextUploadIdMarker>"
        "<IsTruncated>true</IsTruncated>"
        "<Upload><Key>p/tmp/t-1</Key><UploadId>2~a</UploadId><Initiated>2026-12-03T07:03:56.000Z"
        "</Initiated></Upload>"
        "<Upload><Key>q/tmp/t-9</Key><UploadId>2~z</UploadId><Initiated>2026-12-03T07:03:56Z"
        "</Initiated></Upload>"
        "<Upload><Key>p/tmp/t-2</Key><UploadId>2~b</UploadId><Initiated>2026-12-03T07:03:57Z"
        "</Initiated></Upload></ListMultipartUploadsResult>";
    seen s = {0};
    bool more;
    char km[64], im[64];
    assert_int_equal(pc_s3_xml_uploads(doc, strlen(doc), "p/", see_mpu, &s, &more, km, sizeof(km),
                                       im, sizeof(im)),
                     0);
    assert_true(more);
    assert_string_equal(km, "p/tmp/t-2");
    assert_string_equal(im, "2~b");
    assert_int_equal(s.n, 2);
    assert_string_equal(s.keys[0], "tmp/t-1");
    assert_string_equal(s.etags[0], "2~a");
    assert_int_equal(s.times[1], 1796281437);
    const char noid[] = "<ListMultipartUploadsResult><Upload><Key>p/k</Key><Initiated>"
                        "2026-12-03T07:03:56Z</Initiated></Upload></ListMultipartUploadsResult>";
    assert_int_equal(pc_s3_xml_uploads(noid, strlen(noid), "p/", see_mpu, &s, &more, km, sizeof(km),
                                       im, sizeof(im)),
                     PC_EINVAL);
}

/* Mutated documents (bytes flipped, cut, duplicated; a fixed seed): the
 * parser returns a code and reports only keys under the prefix, never
 * crashes (run under ASan by make asan). */
static int check_obj(const pc_s3_obj *o, void *p)
{
    (void)p;
    assert_non_null(o->key);
    assert_non_null(o->etag);
    return 0;
}

static void test_xml_mutations(void **state)
{
    (void)state;
    size_t n = strlen(list_doc);
    char *m = malloc(2 * n + 1);
    assert_non_null(m);
    uint32_t seed = 12345;
    size_t ok = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(m, list_doc, n);
        size_t len = n;
        int edits = 1 + round % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            switch ((seed >> 4) % 4) {
            case 0:
                m[at] = (char)(seed >> 16);
                break;
            case 1:
                len = at ? at : 1;
                break;
            case 2:
                m[at] = '<';
                break;
            default:
                if (len + (len - at) <= 2 * n) {
                    memmove(m + len, m + at, len - at);
                    len += len - at;
                }
            }
        }
        bool more;
        char token[64];
        int rc = pc_s3_xml_objects(m, len, "p/", check_obj, NULL, &more, token, sizeof(token));
        assert_true(rc == 0 || rc == PC_EINVAL || rc == PC_ETOOBIG);
        ok += rc == 0;
    }
    assert_true(ok > 0); /* some mutations keep the document valid */
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presign_aws_example),
        cmocka_unit_test(test_presign_reference),
        cmocka_unit_test(test_sign_headers_aws_example),
        cmocka_unit_test(test_sign_headers_reference),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_open_options),
        cmocka_unit_test(test_xml_objects),
        cmocka_unit_test(test_xml_no_external_entities),
        cmocka_unit_test(test_xml_text_and_time),
        cmocka_unit_test(test_xml_uploads),
        cmocka_unit_test(test_xml_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
