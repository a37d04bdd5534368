/* The `oss` repository for Elasticsearch 7.10: a BlobStoreRepository whose blobs live in OSS. */
package migrator.oss;

import org.elasticsearch.cluster.metadata.RepositoryMetadata;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.BlobStore;
import org.elasticsearch.common.unit.ByteSizeValue;
import org.elasticsearch.indices.recovery.RecoverySettings;
import org.elasticsearch.repositories.blobstore.BlobStoreRepository;
import org.elasticsearch.common.xcontent.NamedXContentRegistry;

final class OssRepository extends BlobStoreRepository {
    private final OssSettings settings;

    OssRepository(RepositoryMetadata metadata, NamedXContentRegistry registry, ClusterService clusterService,
                  RecoverySettings recoverySettings) {
        super(metadata, metadata.settings().getAsBoolean("compress", false), registry, clusterService,
            recoverySettings);
        this.settings = OssSettings.of(metadata.name(), metadata.settings()::get);
    }

    @Override
    protected BlobStore createBlobStore() {
        return new OssBlobStore(settings.open());
    }

    @Override
    public BlobPath basePath() {
        BlobPath path = BlobPath.cleanPath();
        for (String part : settings.basePathParts()) {
            path = path.add(part);
        }
        return path;
    }

    @Override
    protected ByteSizeValue chunkSize() {
        return new ByteSizeValue(settings.chunkBytes);
    }
}
