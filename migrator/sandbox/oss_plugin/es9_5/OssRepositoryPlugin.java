/*
 * The test bed's `oss` repository plugin for Elasticsearch 9.x: registers the type and hides its secrets.
 * Written for migrator's sandbox from Elasticsearch's RepositoryPlugin interface.
 */
package migrator.oss;

import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.util.BigArrays;
import org.elasticsearch.env.Environment;
import org.elasticsearch.indices.recovery.RecoverySettings;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.RepositoryPlugin;
import org.elasticsearch.repositories.RepositoriesMetrics;
import org.elasticsearch.repositories.Repository;
import org.elasticsearch.repositories.SnapshotMetrics;
import org.elasticsearch.xcontent.NamedXContentRegistry;

import java.util.List;
import java.util.Map;

public final class OssRepositoryPlugin extends Plugin implements RepositoryPlugin {
    @Override
    public Map<String, Repository.Factory> getRepositories(Environment env, NamedXContentRegistry registry,
                                                           ClusterService clusterService, BigArrays bigArrays,
                                                           RecoverySettings recoverySettings,
                                                           RepositoriesMetrics metrics,
                                                           SnapshotMetrics snapshotMetrics) {
        return Map.of(OssSettings.TYPE, (projectId, metadata) -> new OssRepository(
            projectId, metadata, registry, clusterService, bigArrays, recoverySettings, snapshotMetrics));
    }

    /** The secrets never appear in GET _snapshot or the cluster state (left out, not masked). */
    @Override
    public List<String> getSettingsFilter() {
        return OssSettings.SECRETS;
    }
}
