/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * s3_xml.c - S3's XML answers read with libxml2 (s3_xml.h). libxml2 rather
 * than a hand-written extractor: the answers carry entities (&quot; in
 * every ETag), keys that may hold any character, and come from a server we
 * do not control; a real parser gets those right.
 */
#include "s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* The document's root element, checked to be named root (when not NULL). */
static xmlDocPtr parse(const char *xml, size_t len, const char *root, xmlNodePtr *out)
{
    pthread_once(&xml_once, xml_init);
    if (len > (size_t)64 << 20 || len == 0)
        return NULL;
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return NULL;
    xmlNodePtr r = xmlDocGetRootElement(doc);
    if (!r || (root && strcmp((const char *)r->name, root) != 0)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    *out = r;
    return doc;
}

static bool named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent->children; c; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

/* The text of element n (NULL when n is NULL), the caller's to xmlFree. */
static char *text_of(xmlNodePtr n)
{
    return n ? (char *)xmlNodeGetContent(n) : NULL;
}

static int copy_out(const char *s, char *buf, size_t size)
{
    if (strlen(s) >= size) {
        pc_error_set("S3 answer: a value of %zu bytes is too long", strlen(s));
        return PC_ETOOBIG;
    }
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

static int bad_doc(const char *what)
{
    pc_error_set("S3 answered something that is not a %s document", what);
    return PC_EINVAL;
}

int pc_s3_xml_text(const char *xml, size_t len, const char *root, const char *name, char *buf,
                   size_t size)
{
    xmlNodePtr r;
    xmlDocPtr doc = parse(xml, len, root, &r);
    if (!doc)
        return bad_doc(root ? root : "XML");
    char *t = text_of(child(r, name));
    int rc = t ? copy_out(t, buf, size) : PC_ENOTFOUND;
    xmlFree(t);
    xmlFreeDoc(doc);
    return rc;
}

int pc_s3_xml_time(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return PC_EINVAL;
    if (*end == '.') {
        end++;
        if (*end < '0' || *end > '9')
            return PC_EINVAL;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (strcmp(end, "Z") != 0)
        return PC_EINVAL;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return PC_EINVAL;
    *out = t;
    return 0;
}

/* A decimal size; false for anything else. */
static bool parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_true(xmlNodePtr n)
{
    char *t = text_of(n);
    bool yes = t && strcmp(t, "true") == 0;
    xmlFree(t);
    return yes;
}

/* The next-marker element's text into buf ("" when absent). */
static int marker(xmlNodePtr r, const char *name, char *buf, size_t size)
{
    char *t = text_of(child(r, name));
    int rc = copy_out(t ? t : "", buf, size);
    xmlFree(t);
    return rc;
}

int pc_s3_xml_objects(const char *xml, size_t len, const char *strip,
                      int (*cb)(const pc_s3_obj *o, void *ctx), void *ctx, bool *truncated,
                      char *token, size_t tsize)
{
    xmlNodePtr r;
    xmlDocPtr doc = parse(xml, len, "ListBucketResult", &r);
    if (!doc)
        return bad_doc("ListBucketResult");
    size_t sl = strip ? strlen(strip) : 0;
    int rc = 0;
    *truncated = is_true(child(r, "IsTruncated"));
    rc = marker(r, "NextContinuationToken", token, tsize);
    if (*truncated && rc == 0 && !*token)
        rc = bad_doc("ListBucketResult (truncated without a continuation token)");
    for (xmlNodePtr c = r->children; c && rc == 0; c = c->next) {
        if (!named(c, "Contents"))
            continue;
        char *key = text_of(child(c, "Key")), *size = text_of(child(c, "Size"));
        char *mod = text_of(child(c, "LastModified")), *etag = text_of(child(c, "ETag"));
        pc_s3_obj o = {0};
        if (!key || !parse_size(size, &o.size) || pc_s3_xml_time(mod, &o.mtime) != 0)
            rc = bad_doc("ListBucketResult (an entry without key, size or time)");
        else if (strncmp(key, strip ? strip : "", sl) == 0) {
            o.key = key + sl;
            o.etag = etag ? etag : "";
            rc = cb(&o, ctx);
        }
        xmlFree(key);
        xmlFree(size);
        xmlFree(mod);
        xmlFree(etag);
    }
    xmlFreeDoc(doc);
    return rc;
}

int pc_s3_xml_uploads(const char *xml, size_t len, const char *strip,
                      int (*cb)(const pc_s3_mpu *m, void *ctx), void *ctx, bool *truncated,
                      char *key_marker, size_t ksize, char *id_marker, size_t isize)
{
    xmlNodePtr r;
    xmlDocPtr doc = parse(xml, len, "ListMultipartUploadsResult", &r);
    if (!doc)
        return bad_doc("ListMultipartUploadsResult");
    size_t sl = strip ? strlen(strip) : 0;
    *truncated = is_true(child(r, "IsTruncated"));
    int rc = marker(r, "NextKeyMarker", key_marker, ksize);
    if (rc == 0)
        rc = marker(r, "NextUploadIdMarker", id_marker, isize);
    if (*truncated && rc == 0 && !*key_marker)
        rc = bad_doc("ListMultipartUploadsResult (truncated without a marker)");
    for (xmlNodePtr c = r->children; c && rc == 0; c = c->next) {
        if (!named(c, "Upload"))
            continue;
        char *key = text_of(child(c, "Key")), *id = text_of(child(c, "UploadId"));
        char *when = text_of(child(c, "Initiated"));
        pc_s3_mpu m = {0};
        if (!key || !id || !*id || pc_s3_xml_time(when, &m.initiated) != 0)
            rc = bad_doc("ListMultipartUploadsResult (an upload without key, id or time)");
        else if (strncmp(key, strip ? strip : "", sl) == 0) {
            m.key = key + sl;
            m.upload_id = id;
            rc = cb(&m, ctx);
        }
        xmlFree(key);
        xmlFree(id);
        xmlFree(when);
    }
    xmlFreeDoc(doc);
    return rc;
}
