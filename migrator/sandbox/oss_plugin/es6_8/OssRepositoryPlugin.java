/*
 * The test bed's `oss` repository plugin for Elasticsearch 6.8: registers the type and hides its
 * secrets. Written for migrator's sandbox from Elasticsearch's RepositoryPlugin interface.
 */
package migrator.oss;

import org.elasticsearch.common.xcontent.NamedXContentRegistry;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.RepositoryPlugin;
import org.elasticsearch.repositories.Repository;

import java.util.Collections;
import java.util.List;
import java.util.Map;

public final class OssRepositoryPlugin extends Plugin implements RepositoryPlugin {
    @Override
    public Map<String, Repository.Factory> getRepositories(Environment env, NamedXContentRegistry registry) {
        return Collections.singletonMap(OssSettings.TYPE,
            metadata -> new OssRepository(metadata, env.settings(), registry));
    }

    /** The secrets never appear in GET _snapshot or the cluster state (left out, not masked). */
    @Override
    public List<String> getSettingsFilter() {
        return OssSettings.SECRETS;
    }
}
