/*
 * test_manifest.c - unit tests for manifest.c: every manifest kind, media
 * type from the document or the Content-Type, subjects and artifact types,
 * and the many ways a manifest can be malformed; the referrers descriptor.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5                                                                                         \
    "sha512:5555555555555555555555555555555555555555555555555555555555555555"                      \
    "5555555555555555555555555555555555555555555555555555555555555555"

#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"
#define DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* A descriptor literal. */
#define DESC(mt, d, size) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #size "}"

#define OCI_IMAGE                                                                                  \
    "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","                               \
    "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 100) ","                                              \
                                                  "\"layers\":[" DESC(LAYER_MT, D2,                \
                                                                      2000) "," DESC(LAYER_MT, D3, \
                                                                                     3000) "]}"

static int parse(pc_manifest_info *info, const char *json, const char *ct)
{
    return pc_manifest_parse(info, json, strlen(json), ct);
}

/* Expect json (with Content-Type ct) to be rejected with PC_EINVAL, a
 * message containing `needle` (when not NULL) and a cleared info. */
static void check_invalid(const char *json, const char *ct, const char *needle)
{
    pc_manifest_info info;
    pc_error_clear();
    int rc = parse(&info, json, ct);
    if (rc != PC_EINVAL)
        fail_msg("rc %d, want PC_EINVAL, for %s", rc, json);
    if (!pc_error_last()[0])
        fail_msg("no message for %s", json);
    if (needle && !strstr(pc_error_last(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", pc_error_last(), needle);
    assert_null(info.refs);
    assert_int_equal(info.nrefs, 0);
    assert_false(info.has_subject);
    assert_string_equal(info.media_type, "");
}

static void test_type_known(void **state)
{
    assert_true(pc_manifest_type_known(PC_MT_OCI_MANIFEST));
    assert_true(pc_manifest_type_known(PC_MT_OCI_INDEX));
    assert_true(pc_manifest_type_known(PC_MT_DOCKER_MANIFEST));
    assert_true(pc_manifest_type_known(PC_MT_DOCKER_LIST));
    assert_false(pc_manifest_type_known(PC_MT_OCI_CONFIG));
    assert_false(
        pc_manifest_type_known("application/vnd.docker.distribution.manifest.v1+prettyjws"));
    assert_false(pc_manifest_type_known("application/json"));
    assert_false(pc_manifest_type_known(""));
    assert_false(pc_manifest_type_known(NULL));
    assert_false(pc_manifest_type_known(PC_MT_OCI_MANIFEST " "));
}

static void test_oci_image(void **state)
{
    pc_manifest_info info;
    assert_int_equal(parse(&info, OCI_IMAGE, PC_MT_OCI_MANIFEST), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_MANIFEST);
    assert_false(info.is_index);
    assert_false(info.has_subject);
    assert_string_equal(info.artifact_type, "");
    assert_int_equal(info.nrefs, 3);
    assert_string_equal(info.refs[0].digest.str, D1);
    assert_string_equal(info.refs[1].digest.str, D2);
    assert_string_equal(info.refs[2].digest.str, D3);
    for (size_t i = 0; i < info.nrefs; i++)
        assert_false(info.refs[i].is_manifest);
    pc_manifest_info_clear(&info);
    assert_null(info.refs);
    assert_int_equal(info.nrefs, 0);

    /* No Content-Type at all (NULL or empty): the document's type counts. */
    assert_int_equal(parse(&info, OCI_IMAGE, NULL), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_MANIFEST);
    pc_manifest_info_clear(&info);
    assert_int_equal(parse(&info, OCI_IMAGE, ""), 0);
    pc_manifest_info_clear(&info);
}

static void test_media_type_from_content_type(void **state)
{
    const char *doc =
        "{\"schemaVersion\":2,"
        "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ","
                                                    "\"layers\":[" DESC(LAYER_MT, D2, 2) "]}";
    pc_manifest_info info;

    assert_int_equal(parse(&info, doc, PC_MT_OCI_MANIFEST), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_MANIFEST);
    assert_int_equal(info.nrefs, 2);
    pc_manifest_info_clear(&info);

    /* Parameters and whitespace are not part of the media type. */
    assert_int_equal(parse(&info, doc, " " PC_MT_OCI_MANIFEST " ; charset=utf-8"), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_MANIFEST);
    pc_manifest_info_clear(&info);
    assert_int_equal(parse(&info, doc, PC_MT_OCI_MANIFEST ";charset=utf-8"), 0);
    pc_manifest_info_clear(&info);

    /* Neither a document type nor a Content-Type. */
    check_invalid(doc, NULL, NULL);
    check_invalid(doc, "", NULL);
    check_invalid(doc, "; charset=utf-8", NULL);
    /* A Content-Type that is no manifest type. */
    check_invalid(doc, "application/json", "application/json");
    check_invalid(doc, "application/vnd.docker.distribution.manifest.v1+prettyjws", NULL);
}

static void test_media_type_mismatch(void **state)
{
    pc_manifest_info info;
    check_invalid(OCI_IMAGE, PC_MT_DOCKER_MANIFEST, "does not match");
    check_invalid(OCI_IMAGE, PC_MT_OCI_INDEX, "does not match");
    check_invalid(OCI_IMAGE, "application/json", "does not match");

    /* Media types compare case-insensitively; parameters are ignored. */
    assert_int_equal(parse(&info, OCI_IMAGE, "Application/VND.OCI.Image.Manifest.v1+JSON"), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_MANIFEST);
    pc_manifest_info_clear(&info);
    assert_int_equal(parse(&info, OCI_IMAGE, PC_MT_OCI_MANIFEST "; charset=utf-8"), 0);
    pc_manifest_info_clear(&info);

    /* The document's own type must be a known one, and a string. */
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[]}",
                  NULL, "unsupported");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":7,"
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[]}",
                  PC_MT_OCI_MANIFEST, "mediaType");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"\","
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[]}",
                  NULL, NULL);
}

static void test_docker_manifest(void **state)
{
    const char *doc = "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_DOCKER_MANIFEST "\","
                      "\"config\":" DESC(DOCKER_CONFIG, D1,
                                         1469) ","
                                               "\"layers\":[" DESC(DOCKER_LAYER, D2, 3370706) "]}";
    pc_manifest_info info;
    assert_int_equal(parse(&info, doc, PC_MT_DOCKER_MANIFEST), 0);
    assert_string_equal(info.media_type, PC_MT_DOCKER_MANIFEST);
    assert_false(info.is_index);
    assert_string_equal(info.artifact_type, ""); /* the docker config type is no artifact */
    assert_int_equal(info.nrefs, 2);
    assert_string_equal(info.refs[0].digest.str, D1);
    assert_false(info.refs[0].is_manifest);
    assert_string_equal(info.refs[1].digest.str, D2);
    assert_false(info.refs[1].is_manifest);
    pc_manifest_info_clear(&info);
}

static void test_oci_index(void **state)
{
    const char *doc =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\","
        "\"manifests\":["
        "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":500,"
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" PC_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":501,"
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}],"
        "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}";
    pc_manifest_info info;
    assert_int_equal(parse(&info, doc, NULL), 0);
    assert_string_equal(info.media_type, PC_MT_OCI_INDEX);
    assert_true(info.is_index);
    assert_string_equal(info.artifact_type, "");
    assert_int_equal(info.nrefs, 2);
    assert_string_equal(info.refs[0].digest.str, D1);
    assert_true(info.refs[0].is_manifest);
    assert_string_equal(info.refs[1].digest.str, D2);
    assert_true(info.refs[1].is_manifest);
    pc_manifest_info_clear(&info);

    /* An empty index is allowed and points at nothing. */
    const char *empty = "{\"schemaVersion\":2,\"manifests\":[]}";
    assert_int_equal(parse(&info, empty, PC_MT_OCI_INDEX), 0);
    assert_true(info.is_index);
    assert_int_equal(info.nrefs, 0);
    pc_manifest_info_clear(&info);
}

static void test_docker_list(void **state)
{
    const char *doc = "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_DOCKER_LIST "\","
                      "\"manifests\":[" DESC(PC_MT_DOCKER_MANIFEST, D3, 525) "]}";
    pc_manifest_info info;
    assert_int_equal(parse(&info, doc, PC_MT_DOCKER_LIST), 0);
    assert_string_equal(info.media_type, PC_MT_DOCKER_LIST);
    assert_true(info.is_index);
    assert_int_equal(info.nrefs, 1);
    assert_string_equal(info.refs[0].digest.str, D3);
    assert_true(info.refs[0].is_manifest);
    pc_manifest_info_clear(&info);

    /* An index document pushed under an image manifest Content-Type. */
    check_invalid(doc, PC_MT_DOCKER_MANIFEST, "does not match");
}

static void test_subject_and_artifact_type(void **state)
{
    pc_manifest_info info;

    /* An artifact in the OCI 1.1 style: empty config, explicit artifactType. */
    const char *sig =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.signature\","
        "\"config\":" DESC(PC_MT_OCI_EMPTY, D1,
                           2) ","
                              "\"layers\":[" DESC(
                                  "application/vnd.example.sig.v1", D2,
                                  42) "],"
                                      "\"subject\":" DESC(
                                          PC_MT_OCI_MANIFEST, D4,
                                          1234) ","
                                                "\"annotations\":{\"org.example\":\"x\"}}";
    assert_int_equal(parse(&info, sig, NULL), 0);
    assert_string_equal(info.artifact_type, "application/vnd.example.signature");
    assert_true(info.has_subject);
    assert_string_equal(info.subject.str, D4);
    assert_int_equal(info.nrefs, 2);
    pc_manifest_info_clear(&info);
    assert_false(info.has_subject);

    /* No artifactType: the config media type is the artifact type... */
    const char *sbom =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"config\":" DESC("application/vnd.example.sbom.config", D1, 2) ","
                                                                         "\"layers\":[]}";
    assert_int_equal(parse(&info, sbom, NULL), 0);
    assert_string_equal(info.artifact_type, "application/vnd.example.sbom.config");
    assert_false(info.has_subject);
    assert_int_equal(info.nrefs, 1); /* layers may be empty: config only */
    pc_manifest_info_clear(&info);

    /* ...including the empty config type... */
    const char *empty_cfg =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"config\":" DESC(PC_MT_OCI_EMPTY, D1, 2) ","
                                                   "\"layers\":[" DESC(PC_MT_OCI_EMPTY, D1, 2) "]}";
    assert_int_equal(parse(&info, empty_cfg, NULL), 0);
    assert_string_equal(info.artifact_type, PC_MT_OCI_EMPTY);
    pc_manifest_info_clear(&info);

    /* ...but not an ordinary image config: that is an image, not an artifact. */
    assert_int_equal(parse(&info, OCI_IMAGE, NULL), 0);
    assert_string_equal(info.artifact_type, "");
    pc_manifest_info_clear(&info);

    /* An index may carry artifactType and subject too. */
    const char *idx = "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\","
                      "\"artifactType\":\"application/vnd.example.bundle\","
                      "\"manifests\":[" DESC(PC_MT_OCI_MANIFEST, D2,
                                             10) "],"
                                                 "\"subject\":" DESC(PC_MT_OCI_INDEX, D5, 99) "}";
    assert_int_equal(parse(&info, idx, NULL), 0);
    assert_true(info.is_index);
    assert_string_equal(info.artifact_type, "application/vnd.example.bundle");
    assert_true(info.has_subject);
    assert_string_equal(info.subject.str, D5);
    assert_int_equal(info.subject.alg, PC_DIGEST_SHA512);
    pc_manifest_info_clear(&info);

    /* Bad subject or artifactType. */
    check_invalid(
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[],"
                                                    "\"subject\":" DESC(PC_MT_OCI_MANIFEST,
                                                                        "sha256:abc", 1) "}",
        NULL, "subject.digest");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[],"
                                                              "\"subject\":\"" D4 "\"}",
                  NULL, "subject");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[],"
                                                              "\"artifactType\":[\"a\"]}",
                  NULL, "artifactType");
}

static void test_bad_json(void **state)
{
    const char *bad[] = {
        "",
        "{",
        "{\"schemaVersion\":2",
        "[]",
        "\"string\"",
        "2",
        "null",
        OCI_IMAGE "x",
        OCI_IMAGE OCI_IMAGE,
        "{\"schemaVersion\":2,\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX
        "\",\"manifests\":[]}",
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\",\"manifests\":[],}",
        "{'schemaVersion':2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_invalid(bad[i], PC_MT_OCI_INDEX, NULL);

    pc_manifest_info info;
    assert_int_equal(pc_manifest_parse(&info, NULL, 0, PC_MT_OCI_INDEX), PC_EINVAL);
    /* An embedded NUL is not JSON. */
    const char nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0";
    assert_int_equal(pc_manifest_parse(&info, nul, sizeof(nul), PC_MT_OCI_INDEX), PC_EINVAL);
    /* Only len bytes count: a prefix of a valid document is not valid. */
    assert_int_equal(pc_manifest_parse(&info, OCI_IMAGE, strlen(OCI_IMAGE) - 1, NULL), PC_EINVAL);
}

static void test_schema_version(void **state)
{
#define BODY "\"mediaType\":\"" PC_MT_OCI_INDEX "\",\"manifests\":[]}"
    check_invalid("{" BODY, NULL, "schemaVersion");
    check_invalid("{\"schemaVersion\":1," BODY, NULL, "schemaVersion");
    check_invalid("{\"schemaVersion\":3," BODY, NULL, "schemaVersion");
    check_invalid("{\"schemaVersion\":\"2\"," BODY, NULL, "schemaVersion");
    check_invalid("{\"schemaVersion\":2.0," BODY, NULL, "schemaVersion");
    check_invalid("{\"schemaVersion\":null," BODY, NULL, "schemaVersion");
#undef BODY
}

static void test_bad_config(void **state)
{
#define IMG(config, layers)                                                                        \
    "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\"" config ",\"layers\":" layers "}"
    check_invalid(IMG("", "[]"), NULL, "config");
    check_invalid(IMG(",\"config\":null", "[]"), NULL, "config");
    check_invalid(IMG(",\"config\":\"" D1 "\"", "[]"), NULL, "config");
    check_invalid(IMG(",\"config\":[]", "[]"), NULL, "config");
    check_invalid(IMG(",\"config\":{\"digest\":\"" D1 "\",\"size\":1}", "[]"), NULL,
                  "config.mediaType");
    check_invalid(IMG(",\"config\":{\"mediaType\":1,\"digest\":\"" D1 "\",\"size\":1}", "[]"), NULL,
                  "config.mediaType");
    check_invalid(IMG(",\"config\":{\"mediaType\":\"a/b\",\"size\":1}", "[]"), NULL,
                  "config.digest");
    check_invalid(IMG(",\"config\":" DESC("a/b", "sha256:zz", 1), "[]"), NULL, "config.digest");
    check_invalid(IMG(",\"config\":" DESC("a/b", "md5:d41d8cd98f00b204e9800998ecf8427e", 1), "[]"),
                  NULL, "config.digest");
    check_invalid(
        IMG(",\"config\":" DESC(
                "a/b", "SHA256:1111111111111111111111111111111111111111111111111111111111111111",
                1),
            "[]"),
        NULL, "config.digest");
    check_invalid(IMG(",\"config\":" DESC("a/b", D1, -1), "[]"), NULL, "config.size");
    check_invalid(IMG(",\"config\":" DESC("a/b", D1, 1.5), "[]"), NULL, "config.size");
    check_invalid(IMG(",\"config\":" DESC("a/b", D1, "1"), "[]"), NULL, "config.size");
    check_invalid(IMG(",\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\"}", "[]"), NULL,
                  "config.size");
    /* The uppercase-hex digest of a real blob is still invalid. */
    check_invalid(
        IMG(",\"config\":" DESC(
                "a/b", "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                0),
            "[]"),
        NULL, "config.digest");
}

static void test_bad_layers(void **state)
{
#define CFG ",\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1)
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\"" CFG "}", NULL,
                  "layers");
    check_invalid(IMG(CFG, "null"), NULL, "layers");
    check_invalid(IMG(CFG, "{}"), NULL, "layers");
    check_invalid(IMG(CFG, "[\"" D2 "\"]"), NULL, "layers[0]");
    check_invalid(IMG(CFG, "[" DESC(LAYER_MT, D2, 1) "," DESC(LAYER_MT, "sha256:1234", 1) "]"),
                  NULL, "layers[1].digest");
    check_invalid(IMG(CFG, "[" DESC(LAYER_MT, D2, 1) "," DESC(LAYER_MT, D3, 1) "," DESC(
                               LAYER_MT, "sha384:abcdef", 1) "]"),
                  NULL, "layers[2].digest");
    check_invalid(IMG(CFG, "[{\"mediaType\":\"" LAYER_MT "\",\"digest\":\"" D2 "\",\"size\":-5}]"),
                  NULL, "layers[0].size");
#undef CFG
#undef IMG

    pc_manifest_info info;
    const char *sha512_layer =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ","
                                                    "\"layers\":[" DESC(LAYER_MT, D5, 0) "]}";
    assert_int_equal(parse(&info, sha512_layer, NULL), 0);
    assert_int_equal(info.nrefs, 2);
    assert_string_equal(info.refs[1].digest.str, D5);
    assert_int_equal(info.refs[1].digest.alg, PC_DIGEST_SHA512);
    pc_manifest_info_clear(&info);
}

static void test_bad_index(void **state)
{
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\"}", NULL, "manifests");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\",\"manifests\":{}}",
                  NULL, "manifests");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\","
                  "\"manifests\":[" DESC(PC_MT_OCI_MANIFEST, "sha256:", 1) "]}",
                  NULL, "manifests[0].digest");
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_DOCKER_LIST "\","
                  "\"manifests\":[" DESC(PC_MT_DOCKER_MANIFEST, D1, 1) ",7]}",
                  NULL, "manifests[1]");
    /* An image manifest's fields do not make an index. */
    check_invalid("{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_INDEX "\","
                  "\"config\":" DESC(PC_MT_OCI_CONFIG, D1, 1) ",\"layers\":[]}",
                  NULL, "manifests");
}

static void test_too_big(void **state)
{
    pc_manifest_info info;
    size_t n = PC_MANIFEST_MAX + 1;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, ' ', n);
    memcpy(buf, OCI_IMAGE, strlen(OCI_IMAGE));
    assert_int_equal(pc_manifest_parse(&info, buf, n, NULL), PC_ETOOBIG);
    assert_null(info.refs);
    /* Exactly the limit is fine (trailing whitespace is valid JSON). */
    assert_int_equal(pc_manifest_parse(&info, buf, n - 1, NULL), 0);
    assert_int_equal(info.nrefs, 3);
    pc_manifest_info_clear(&info);
    free(buf);
}

static void test_info_clear(void **state)
{
    pc_manifest_info info;
    memset(&info, 0, sizeof(info));
    pc_manifest_info_clear(&info);
    pc_manifest_info_clear(&info);
    pc_manifest_info_clear(NULL);

    /* A failed parse after a successful one leaves nothing behind. */
    assert_int_equal(parse(&info, OCI_IMAGE, NULL), 0);
    pc_manifest_info_clear(&info);
    assert_int_equal(parse(&info, OCI_IMAGE, PC_MT_DOCKER_LIST), PC_EINVAL);
    assert_null(info.refs);
    pc_manifest_info_clear(&info);
}

static void fill_rec(pc_manifest_rec *m, const char *mt, const char *digest, uint64_t size,
                     const char *artifact_type)
{
    memset(m, 0, sizeof(*m));
    strcpy(m->repo, "a/b");
    assert_int_equal(pc_digest_parse(&m->digest, digest), 0);
    strcpy(m->media_type, mt);
    m->size = size;
    strcpy(m->artifact_type, artifact_type);
}

static void test_descriptor(void **state)
{
    const char *sig =
        "{\"schemaVersion\":2,\"mediaType\":\"" PC_MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.signature\","
        "\"config\":" DESC(PC_MT_OCI_EMPTY, D1,
                           2) ","
                              "\"layers\":[" DESC(
                                  "application/vnd.example.sig.v1", D2,
                                  42) "],"
                                      "\"subject\":" DESC(
                                          PC_MT_OCI_MANIFEST, D4,
                                          1234) ","
                                                "\"annotations\":{\"org.example.a\":\"x\",\"org."
                                                "opencontainers.image."
                                                "created\":\"2024-01-01T00:00:00Z\"}}";
    pc_manifest_rec m;
    fill_rec(&m, PC_MT_OCI_MANIFEST, D3, strlen(sig), "application/vnd.example.signature");

    json_t *d = pc_manifest_descriptor(&m, sig, strlen(sig));
    assert_non_null(d);
    assert_true(json_is_object(d));
    assert_string_equal(json_string_value(json_object_get(d, "mediaType")), PC_MT_OCI_MANIFEST);
    assert_string_equal(json_string_value(json_object_get(d, "digest")), D3);
    assert_true(json_is_integer(json_object_get(d, "size")));
    assert_int_equal(json_integer_value(json_object_get(d, "size")), strlen(sig));
    assert_string_equal(json_string_value(json_object_get(d, "artifactType")),
                        "application/vnd.example.signature");
    json_t *ann = json_object_get(d, "annotations");
    assert_true(json_is_object(ann));
    assert_int_equal(json_object_size(ann), 2);
    assert_string_equal(json_string_value(json_object_get(ann, "org.example.a")), "x");
    assert_string_equal(json_string_value(json_object_get(ann, "org.opencontainers.image.created")),
                        "2024-01-01T00:00:00Z");
    assert_int_equal(json_object_size(d), 5);
    json_decref(d);

    /* No artifact type, no annotations: both keys are left out. */
    fill_rec(&m, PC_MT_OCI_MANIFEST, D3, strlen(OCI_IMAGE), "");
    d = pc_manifest_descriptor(&m, OCI_IMAGE, strlen(OCI_IMAGE));
    assert_non_null(d);
    assert_null(json_object_get(d, "artifactType"));
    assert_null(json_object_get(d, "annotations"));
    assert_int_equal(json_object_size(d), 3);
    json_decref(d);

    /* Annotations that are not an object, or bytes that do not parse:
     * the descriptor still comes from the record. */
    const char *odd = "{\"schemaVersion\":2,\"annotations\":[\"x\"]}";
    d = pc_manifest_descriptor(&m, odd, strlen(odd));
    assert_non_null(d);
    assert_null(json_object_get(d, "annotations"));
    json_decref(d);
    d = pc_manifest_descriptor(&m, "{not json", 9);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "digest")), D3);
    json_decref(d);
    d = pc_manifest_descriptor(&m, NULL, 0);
    assert_non_null(d);
    json_decref(d);

    /* Serialized, it is what the referrers API lists. */
    fill_rec(&m, PC_MT_OCI_INDEX, D5, 7, "application/x");
    const char *kv = "{\"annotations\":{\"k\":\"v\"}}";
    d = pc_manifest_descriptor(&m, kv, strlen(kv));
    assert_non_null(d);
    char *s = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(s);
    assert_string_equal(s, "{\"annotations\":{\"k\":\"v\"},\"artifactType\":\"application/x\","
                           "\"digest\":\"" D5 "\",\"mediaType\":\"" PC_MT_OCI_INDEX "\","
                           "\"size\":7}");
    free(s);
    json_decref(d);
}

/* pc_manifest_blob_size: the size an image manifest declares for its
 * config or a layer; anything else (an index's child, an unknown digest,
 * not JSON, a bad size) is PC_ENOTFOUND. */
static void test_blob_size(void **state)
{
    (void)state;
    pc_digest d1, d2, d3, d4;
    uint64_t size = 7;
    assert_int_equal(pc_digest_parse(&d1, D1), 0);
    assert_int_equal(pc_digest_parse(&d2, D2), 0);
    assert_int_equal(pc_digest_parse(&d3, D3), 0);
    assert_int_equal(pc_digest_parse(&d4, D4), 0);
    const char *img = OCI_IMAGE;
    assert_int_equal(pc_manifest_blob_size(img, strlen(img), &d1, &size), 0);
    assert_int_equal(size, 100);
    assert_int_equal(pc_manifest_blob_size(img, strlen(img), &d3, &size), 0);
    assert_int_equal(size, 3000);
    assert_int_equal(pc_manifest_blob_size(img, strlen(img), &d4, &size), PC_ENOTFOUND);
    assert_int_equal(pc_manifest_blob_size("not json", 8, &d1, &size), PC_ENOTFOUND);
    assert_int_equal(pc_manifest_blob_size(NULL, 0, &d1, &size), PC_ENOTFOUND);
    const char *neg = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":-1},"
                      "\"layers\":[{\"digest\":\"" D2 "\",\"size\":\"12\"}]}";
    assert_int_equal(pc_manifest_blob_size(neg, strlen(neg), &d1, &size), PC_ENOTFOUND);
    assert_int_equal(pc_manifest_blob_size(neg, strlen(neg), &d2, &size), PC_ENOTFOUND);
    const char *index =
        "{\"schemaVersion\":2,\"manifests\":[" DESC(PC_MT_OCI_MANIFEST, D1, 55) "]}";
    assert_int_equal(pc_manifest_blob_size(index, strlen(index), &d1, &size), PC_ENOTFOUND);
    assert_int_equal(size, 3000); /* untouched by the failures */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_known),
        cmocka_unit_test(test_oci_image),
        cmocka_unit_test(test_media_type_from_content_type),
        cmocka_unit_test(test_media_type_mismatch),
        cmocka_unit_test(test_docker_manifest),
        cmocka_unit_test(test_oci_index),
        cmocka_unit_test(test_docker_list),
        cmocka_unit_test(test_subject_and_artifact_type),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_schema_version),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_layers),
        cmocka_unit_test(test_bad_index),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_info_clear),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_blob_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
