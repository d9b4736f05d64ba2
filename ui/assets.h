/*
 * assets.h - the page's files (ui/assets/), embedded into the binary at build time by
 * scripts/embed-assets.awk: nothing is read from disk or fetched at run time.
 */
#ifndef LB_UI_ASSETS_H
#define LB_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *path;   /* "/app.js" */
    const char *type;   /* Content-Type */
    const char *data;
    size_t size;
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_asset_count;

#endif
