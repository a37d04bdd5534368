/*
 * The `oss` repository's settings, named as Alibaba Cloud's plugin names them, read and checked once
 * (no Elasticsearch type here, so every API generation shares it): endpoint, access_key_id,
 * secret_access_key, security_token, bucket, base_path, compress (read by Elasticsearch itself),
 * chunk_size (1mb to 1gb, default 1gb), and for V4 signatures region and signature_version.
 */
package migrator.oss;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

final class OssSettings {
    static final String TYPE = "oss";
    /** Left out of GET _snapshot and the cluster state. */
    static final List<String> SECRETS = Collections.unmodifiableList(
        Arrays.asList("access_key_id", "secret_access_key", "security_token"));
    static final long MIN_CHUNK = 1L << 20;
    static final long MAX_CHUNK = 1L << 30;

    final String endpoint;
    final String accessKeyId;
    final String secretAccessKey;
    final String securityToken;
    final String bucket;
    final String basePath;
    final String region;
    final String signatureVersion;
    final long chunkBytes;

    private OssSettings(String repository, Function<String, String> get) {
        endpoint = required(repository, get, "endpoint");
        accessKeyId = required(repository, get, "access_key_id");
        secretAccessKey = required(repository, get, "secret_access_key");
        bucket = required(repository, get, "bucket");
        securityToken = get.apply("security_token");
        String base = get.apply("base_path");
        basePath = base == null ? "" : base;
        region = get.apply("region");
        String version = get.apply("signature_version");
        signatureVersion = version != null ? version : (region != null ? "4" : "1");
        if (!signatureVersion.equals("1") && !signatureVersion.equals("4")) {
            throw new IllegalArgumentException("[" + repository + "] signature_version must be 1 or 4, not " + version);
        }
        if (signatureVersion.equals("4") && region == null) {
            throw new IllegalArgumentException("[" + repository + "] signature_version 4 needs region (e.g. cn-hangzhou)");
        }
        String chunk = get.apply("chunk_size");
        chunkBytes = chunk == null ? MAX_CHUNK : bytes(repository, chunk);
        if (chunkBytes < MIN_CHUNK || chunkBytes > MAX_CHUNK) {
            throw new IllegalArgumentException("[" + repository + "] chunk_size must be between 1mb and 1gb, not " + chunk);
        }
    }

    static OssSettings of(String repository, Function<String, String> get) {
        return new OssSettings(repository, get);
    }

    OssStore open() {
        return new OssStore(endpoint, accessKeyId, secretAccessKey, securityToken, bucket, region, signatureVersion);
    }

    /** base_path split on '/', empty parts dropped ("a//b/" is a/b, as the Alibaba plugin treats it). */
    List<String> basePathParts() {
        List<String> parts = new ArrayList<>();
        for (String part : basePath.split("/")) {
            if (!part.isEmpty()) {
                parts.add(part);
            }
        }
        return parts;
    }

    private static String required(String repository, Function<String, String> get, String name) {
        String value = get.apply(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("[" + repository + "] the oss repository needs the setting " + name);
        }
        return value;
    }

    /** "1gb", "64mb", "512kb", "1048576b" or a plain number of bytes. */
    private static long bytes(String repository, String text) {
        String value = text.trim().toLowerCase(Locale.ROOT);
        long unit = 1;
        String[][] units = {{"gb", "1073741824"}, {"mb", "1048576"}, {"kb", "1024"}, {"g", "1073741824"},
            {"m", "1048576"}, {"k", "1024"}, {"b", "1"}};
        for (String[] candidate : units) {
            if (value.endsWith(candidate[0])) {
                unit = Long.parseLong(candidate[1]);
                value = value.substring(0, value.length() - candidate[0].length()).trim();
                break;
            }
        }
        try {
            return Math.round(Double.parseDouble(value) * unit);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("[" + repository + "] chunk_size is not a byte size: " + text);
        }
    }
}
