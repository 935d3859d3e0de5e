/*
 * fuzz_toml.c - libFuzzer target for the TOML reader (toml.c) and the
 * readers of what runtimes are told about mirrors (nodeconf.c). The input is
 * a TOML file: it is parsed, and a parsed tree is read as containerd's
 * config.toml, as a hosts.toml and as a registries.conf (twice, the second
 * time replacing the first's tables), then serialised to JSON and parsed
 * back. Besides the sanitizers and the leak checker, it checks that a
 * failure always says why (with a line number), that success gives an
 * object, and that hosts and registries hold what their readers promise
 * (an api_root under the host's URL, a prefix on every table).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodeconf.h"
#include "toml.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    char err[300];
    int rc = pc_toml_parse((const char *)data, size, &doc, err, sizeof(err));
    if (rc) {
        CHECK(doc == NULL);
        CHECK(strncmp(err, "line ", 5) == 0);
        return 0;
    }
    CHECK(json_is_object(doc));

    pc_nodeconf_containerd c;
    if (pc_nodeconf_containerd_read(doc, &c, err, sizeof(err)) == 0) {
        if (c.config_path)
            CHECK(c.config_path[0] != '\0' && c.plugin != NULL);
    } else {
        CHECK(err[0] != '\0');
    }
    pc_nodeconf_containerd_clear(&c);

    pc_nodeconf_hosts h;
    if (pc_nodeconf_hosts_read(doc, &h, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < h.nhost; i++) {
            const pc_nodeconf_host *x = &h.host[i];
            CHECK(x->url && x->api_root && x->key);
            CHECK(strncmp(x->url, "http://", 7) == 0 || strncmp(x->url, "https://", 8) == 0);
            size_t auth = (size_t)(strstr(x->url, "://") - x->url) + 3;
            auth += strcspn(x->url + auth, "/");
            CHECK(strncmp(x->api_root, x->url, auth) == 0);
            CHECK(x->pull || x->resolve || x->push);
        }
    } else {
        CHECK(err[0] != '\0');
    }
    pc_nodeconf_hosts_clear(&h);

    pc_nodeconf_registries r = {0};
    if (pc_nodeconf_registries_add(&r, doc, "a", err, sizeof(err)) == 0) {
        size_t n = r.nreg;
        CHECK(pc_nodeconf_registries_add(&r, doc, "b", err, sizeof(err)) == 0);
        CHECK(r.nreg <= 2 * n);
        for (size_t i = 0; i < r.nreg; i++) {
            CHECK(r.reg[i].prefix && r.reg[i].prefix[0]);
            for (size_t j = 0; j < r.reg[i].nmirror; j++)
                CHECK(r.reg[i].mirror[j].location && r.reg[i].mirror[j].location[0]);
            const pc_nodeconf_registry *g = pc_nodeconf_registries_find(&r, r.reg[i].prefix);
            CHECK(g == NULL || strlen(g->prefix) > 0);
        }
    } else {
        CHECK(err[0] != '\0');
    }
    pc_nodeconf_registries_clear(&r);

    char *text = json_dumps(doc, JSON_COMPACT);
    if (text) {
        json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(back != NULL);
        CHECK(json_equal(back, doc));
        json_decref(back);
        free(text);
    }
    json_decref(doc);
    return 0;
}
